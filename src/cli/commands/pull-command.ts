import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { FerryError } from '../../errors/ferry-error.js';
import type { PullStatus } from '../../queue/pull-status.js';
import type { PullService } from '../../services/pull-service.js';
import { hintForCode, humanBytes, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;
const FINISHED = ['completed', 'failed', 'cancelled'];

/** `ferry model pull`, `ferry pull status`, `ferry pull cancel`: talk to the queue in Redis, like any API process. */
export function registerPullCommands(program: Command, model: Command, getContext: GetContext): void {
  model
    .command('pull <ref>')
    .description('pull a model: a registry id, an FLM tag, or hf.co/{org}/{repo}:{QUANT}')
    .option('--hf-repo <repo>', 'Hugging Face repo (org/name)')
    .option('--hf-file <file...>', 'file name(s) or a glob; a split GGUF brings all its shards')
    .option('--revision <rev>', 'branch, tag or commit')
    .option('--sha256 <digest>', 'expected SHA-256 of a single file')
    .option('--detach', 'enqueue and return at once')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { hfRepo?: string; hfFile?: string[]; revision?: string; sha256?: string; detach?: boolean; json?: boolean }) => {
      const pulls = await pullService(getContext);
      const started = await pulls.start(ref, {
        hf_repo: opts.hfRepo,
        hf_file: opts.hfFile && (opts.hfFile.length === 1 ? opts.hfFile[0] : opts.hfFile),
        revision: opts.revision,
        sha256: opts.sha256,
      });
      const { httpStatus: _s, ...answer } = started;
      if (opts.detach || started.state === 'completed') {
        if (opts.json) return printJson(answer);
        const how = started.state === 'completed' ? 'already present' : started.resumed ? `joined pull ${started.id}` : `queued as ${started.id}`;
        const follow = started.state === 'completed' ? '' : `; follow it with: ferry pull status ${started.model_id}`;
        process.stdout.write(`${started.model_id}: ${how}${started.derived_from ? ` (from ${started.derived_from})` : ''}${follow}\n`);
        if (started.state !== 'completed' && (await pulls.workerCount()) === 0) process.stderr.write(`${noWorkerMessage()}\n`);
        return;
      }
      if (!opts.json && started.derived_from) process.stderr.write(`registry id: ${started.model_id}\n`);
      const { status: final, left } = await follow(pulls, started.model_id, !opts.json && Boolean(process.stderr.isTTY));
      if (opts.json) printJson(final);
      if (left) {
        if (!opts.json) process.stdout.write(`${final.model_id}: ${final.state}, left running; follow it with: ferry pull status ${final.model_id}\n`);
        return;
      }
      if (!opts.json) process.stdout.write(`${final.model_id}: ${final.state}${final.path ? ` -> ${final.path}` : ''}\n`);
      if (final.state !== 'completed') {
        const code = final.error_code ?? (final.state === 'cancelled' ? 'pull.cancelled' : 'pull.failed');
        throw new FerryError(code as never, final.error ?? `pull ${final.state}`, { hint: hintForCode(code) ?? `details: ferry pull status ${final.model_id}` });
      }
    });

  const pull = program.command('pull').description('watch and cancel pulls');
  pull
    .command('status <id>')
    .description("a pull's state, bytes, throughput and ETA")
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const status = await (await pullService(getContext)).status(id);
      if (opts.json) return printJson(status);
      process.stdout.write(describeStatus(status) + '\n');
    });
  pull
    .command('cancel <id>')
    .description('cancel a pull, wherever it runs')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const status = await (await pullService(getContext)).cancel(id);
      if (opts.json) return printJson(status);
      process.stdout.write(`${status.model_id}: ${status.state}\n`);
    });
  pull
    .command('list')
    .description('recent and active pulls')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const list = await (await pullService(getContext)).list();
      if (opts.json) return printJson(list);
      for (const s of list) process.stdout.write(describeStatus(s) + '\n');
    });
}

async function pullService(getContext: GetContext): Promise<PullService> {
  const ctx = await getContext();
  await ctx.connectRedisForClient();
  return ctx.pulls();
}

interface Followed {
  status: PullStatus;
  /** Ctrl-C, then "leave it running". */
  left?: boolean;
}

/** A pull still queued this long with no worker attached to the queue gets a word about it. */
const NO_WORKER_WARN_MS = 3000;

function noWorkerMessage(): string {
  return 'ferry: no worker is taking pull jobs, so this pull stays queued until one starts.\n  hint: start one with `ferry worker` (or `npm run worker`) on a machine sharing this Redis; `ferry serve` runs one too';
}

/** Polls the status; draws bars on a terminal. Ctrl-C asks whether to cancel or leave the pull running. */
async function follow(pulls: PullService, modelId: string, tty: boolean): Promise<Followed> {
  const { MultiBar, Presets } = await import('cli-progress');
  const bars = tty ? new MultiBar({ format: ' {name} |{bar}| {percentage}% {done_h}/{total_h} {speed} {eta_h}', barsize: 30, hideCursor: true, clearOnComplete: false, stopOnComplete: false, etaBuffer: 1 }, Presets.shades_classic) : undefined;
  const fileBars = new Map<string, ReturnType<NonNullable<typeof bars>['create']>>();
  let interrupted = false;
  const onSigint = () => (interrupted = true);
  process.on('SIGINT', onSigint);
  let queuedSince: number | undefined;
  let warnedNoWorker = false;
  try {
    let last: PullStatus | undefined;
    for (;;) {
      if (interrupted) {
        interrupted = false;
        bars?.stop();
        if (await askToCancel(modelId)) return { status: await pulls.cancel(modelId) };
        // Leaving it running is a choice, not a failure: exit 0 and say how to follow it.
        return { status: await pulls.status(modelId), left: true };
      }
      const status = await pulls.status(modelId);
      if (bars) drawBars(bars, fileBars, status);
      else if (!last || last.state !== status.state) process.stderr.write(`${describeStatus(status)}\n`);
      last = status;
      if (FINISHED.includes(status.state)) return { status };
      queuedSince = status.state === 'queued' ? queuedSince ?? Date.now() : undefined;
      if (!warnedNoWorker && queuedSince !== undefined && Date.now() - queuedSince >= NO_WORKER_WARN_MS && (await pulls.workerCount()) === 0) {
        warnedNoWorker = true;
        bars?.stop();
        process.stderr.write(`${noWorkerMessage()}\n`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    process.off('SIGINT', onSigint);
    bars?.stop();
  }
}

function drawBars(bars: import('cli-progress').MultiBar, fileBars: Map<string, import('cli-progress').SingleBar>, s: PullStatus): void {
  const speed = `${humanBytes(s.throughput_bps)}/s`;
  const eta = s.state === 'running' ? `ETA ${s.eta_s === null ? '?' : `${s.eta_s}s`}` : s.state;
  for (const f of s.files) {
    let bar = fileBars.get(f.hf_filename);
    if (!bar) {
      bar = bars.create(Math.max(1, f.bytes_total), 0, {});
      fileBars.set(f.hf_filename, bar);
    }
    bar.setTotal(Math.max(1, f.bytes_total));
    // Speed and ETA belong to the file being fetched now; the others say where they stand.
    const active = f.bytes_done < f.bytes_total && (f.bytes_done > 0 || s.files.length === 1);
    const tail = active ? { speed, eta_h: eta } : { speed: '', eta_h: f.bytes_done >= f.bytes_total && f.bytes_total > 0 ? 'done' : 'waiting' };
    bar.update(f.bytes_done, { name: shorten(f.hf_filename), done_h: humanBytes(f.bytes_done), total_h: humanBytes(f.bytes_total), ...tail });
  }
}

async function askToCancel(modelId: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`\ncancel the pull of ${modelId}? [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function describeStatus(s: PullStatus): string {
  const pct = s.bytes_total > 0 ? ` ${((100 * s.bytes_downloaded) / s.bytes_total).toFixed(1)}%` : '';
  const rate = s.state === 'running' ? ` ${humanBytes(s.throughput_bps)}/s ETA ${s.eta_s ?? '?'}s` : '';
  const err = s.error ? ` ${s.error_code}: ${s.error}` : '';
  return `${s.model_id} [${s.id}] ${s.state}${pct} ${humanBytes(s.bytes_downloaded)}/${humanBytes(s.bytes_total)}${rate}${err}`;
}

function shorten(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base.length > 32 ? `${base.slice(0, 29)}...` : base.padEnd(32);
}
