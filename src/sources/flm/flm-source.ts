import { homedir } from 'node:os';
import { join } from 'node:path';
import type * as Execa from 'execa';
import type { ExecaError } from 'execa';
import { lazyModule } from '../../util/lazy-module.js';

const loadExeca = lazyModule<typeof Execa>('execa');
import { FerryError } from '../../errors/ferry-error.js';
import { hasFlmTagShape } from '../../registry/model-id.js';
import { directorySize } from '../../util/directory-size.js';
import { LineSplitter } from '../../util/line-splitter.js';
import { parseFlmList, type FlmTagInfo } from './flm-list.js';
import { FlmProgressTracker, parseFlmPullLine, type FlmPullEvent, type FlmPullSnapshot } from './flm-pull-progress.js';

export interface FlmSourceOptions {
  /** The flm executable: a name looked up on PATH or an absolute path (config `flm_bin`). */
  flmBin: string;
  /** Passed to flm as FLM_MODEL_PATH (config `flm_model_path`); unset: FLM's default, ~/.config/flm/models. */
  flmModelPath?: string;
  /**
   * How long the tag list from `flm list -j` is reused.
   * @defaultValue 300000 (5 minutes, as hal0)
   */
  listCacheMs?: number;
  /**
   * After SIGTERM on cancel, SIGKILL follows this many milliseconds later.
   * @defaultValue 10000
   */
  killGraceMs?: number;
  /**
   * How often the model directory's size on disk is sampled during a pull.
   * @defaultValue 1000
   */
  diskSampleMs?: number;
  /**
   * Minimum gap between two `onProgress` calls (the final call is always made).
   * @defaultValue 500
   */
  progressIntervalMs?: number;
  /** Extra environment for the flm child (tests); FLM_MODEL_PATH is set from `flmModelPath`. */
  env?: Record<string, string>;
}

export type FlmProgress = FlmPullSnapshot;

export interface FlmPullOptions {
  /** Aborting sends SIGTERM, then SIGKILL after `killGraceMs`; the pull rejects with `pull.cancelled`. */
  signal?: AbortSignal;
  onProgress?: (progress: FlmProgress) => void;
  /** Re-download even if FLM has the model (`flm pull --force`). */
  force?: boolean;
}

export interface FlmPullResult {
  tag: string;
  /** The model directory FLM wrote into. */
  path: string;
  bytesTotal: number;
  /** FLM reported the model as already present; nothing was downloaded. */
  alreadyPresent: boolean;
}

/** Lines of FLM output kept for an error message. */
const ERROR_TAIL = 20;

/**
 * FastFlowLM as a pull source. Ferry drives the `flm` CLI and never reads FLM's weights:
 * tags come from `flm list -j`, downloads from `flm pull <tag>`, whose per-file progress
 * lines are turned into whole-model progress.
 */
export class FlmSource {
  private listCache?: { at: number; tags: Promise<FlmTagInfo[]> };

  constructor(private readonly options: FlmSourceOptions) {}

  /** Where FLM keeps its models: FLM_MODEL_PATH, else its default under ~/.config. */
  get modelRoot(): string {
    return this.options.flmModelPath ?? join(homedir(), '.config', 'flm', 'models');
  }

  /** Every tag FLM knows (`--filter all`), cached; concurrent callers share one run of flm. */
  async listTags(opts: { refresh?: boolean } = {}): Promise<FlmTagInfo[]> {
    const ttl = this.options.listCacheMs ?? 5 * 60_000;
    const cached = this.listCache;
    if (!opts.refresh && cached && Date.now() - cached.at < ttl) return cached.tags;
    const tags = this.runList();
    this.listCache = { at: Date.now(), tags };
    // A failed run must not be cached for five minutes: the next caller tries again.
    tags.catch(() => {
      if (this.listCache?.tags === tags) this.listCache = undefined;
    });
    return tags;
  }

  /**
   * hal0's is_flm_tag: the id has FLM's `family:size` shape and FLM lists it. Without an flm
   * binary nothing is an FLM tag (the id may still be something else); other failures throw.
   */
  async isFlmTag(id: string): Promise<boolean> {
    if (!hasFlmTagShape(id)) return false;
    try {
      return (await this.listTags()).some((t) => t.tag === id);
    } catch (err) {
      if (err instanceof FerryError && err.code === 'source.flm_unavailable') return false;
      throw err;
    }
  }

  /** The tag's row from `flm list -j`; `source.not_found` when FLM does not know it. */
  async tagInfo(tag: string): Promise<FlmTagInfo> {
    const info = hasFlmTagShape(tag) ? (await this.listTags()).find((t) => t.tag === tag) : undefined;
    if (!info) {
      throw new FerryError('source.not_found', `FLM has no model tagged ${JSON.stringify(tag)}`, {
        hint: 'run "flm list" to see the tags this FLM version offers',
      });
    }
    return info;
  }

  /**
   * Runs `flm pull <tag>`. The tag is checked against `flm list` first because FLM silently
   * pulls a default model for a tag it does not know.
   */
  async pull(tag: string, opts: FlmPullOptions = {}): Promise<FlmPullResult> {
    const info = await this.tagInfo(tag);
    if (opts.signal?.aborted) throw cancelled(tag);
    const tracker = new FlmProgressTracker(info.size);
    const report = throttle(opts.onProgress, this.options.progressIntervalMs ?? 500);
    const state = { dirName: undefined as string | undefined, already: false, success: false, errors: [] as string[], tail: [] as string[] };

    const onEvent = (event: FlmPullEvent, line: string) => {
      if (event.kind !== 'progress') pushTail(state.tail, line); // hundreds of these say nothing in an error
      if (event.kind === 'name') state.dirName = event.name;
      else if (event.kind === 'already') state.already = true;
      else if (event.kind === 'success') state.success = true;
      else if (event.kind === 'error') pushTail(state.errors, event.message);
      tracker.onEvent(event);
      if (event.kind === 'progress' || event.kind === 'file') report(tracker.snapshot());
    };
    const stdout = new LineSplitter((line) => onEvent(parseFlmPullLine(line), line));
    const stderr = new LineSplitter((line) => onEvent(parseFlmPullLine(line), line));

    const args = ['pull', tag, ...(opts.force ? ['--force'] : [])];
    const child = loadExeca().execa(this.options.flmBin, args, {
      env: this.childEnv(),
      stdin: 'ignore',
      buffer: false,
      cancelSignal: opts.signal,
      forceKillAfterDelay: this.options.killGraceMs ?? 10_000,
    });
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    const sampler = this.sampleDisk(() => state.dirName, tracker, () => report(tracker.snapshot()));

    try {
      await child;
    } catch (err) {
      stdout.end();
      stderr.end();
      throw this.pullError(tag, err as ExecaError, state.errors, state.tail);
    } finally {
      sampler.stop();
    }
    stdout.end();
    stderr.end();
    // FLM may log a failed attempt as [ERROR] and then succeed on a retry; only a run that
    // never reported success counts the [ERROR] lines as its failure.
    if (state.errors.length > 0 && !state.success && !state.already) {
      throw new FerryError('source.flm_failed', `flm pull ${tag} failed: ${state.errors.at(-1)}`, { details: { lines: state.errors } });
    }
    tracker.finish();
    report.flush(tracker.snapshot());
    this.listCache = undefined; // `installed` changed
    return { tag, path: join(this.modelRoot, state.dirName ?? tag), bytesTotal: info.size, alreadyPresent: state.already };
  }

  private async runList(): Promise<FlmTagInfo[]> {
    try {
      const { stdout } = await loadExeca().execa(this.options.flmBin, ['list', '-j', '--filter', 'all'], {
        env: this.childEnv(),
        stdin: 'ignore',
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return parseFlmList(stdout);
    } catch (err) {
      if (err instanceof FerryError) throw err;
      const e = err as ExecaError;
      if (e.code === 'ENOENT' || e.code === 'EACCES') throw this.unavailable(e);
      const lines = String(e.stderr ?? '').split(/\r?\n/).filter(Boolean).slice(-ERROR_TAIL);
      throw new FerryError('source.flm_failed', `"flm list -j" failed: ${lines.at(-1) ?? e.shortMessage}`, { cause: err, details: { lines } });
    }
  }

  private childEnv(): Record<string, string> {
    return { ...this.options.env, ...(this.options.flmModelPath ? { FLM_MODEL_PATH: this.options.flmModelPath } : {}) };
  }

  /** The model directory is known once FLM prints `Name:`; until then there is nothing to sample. */
  private sampleDisk(dirName: () => string | undefined, tracker: FlmProgressTracker, changed: () => void): { stop: () => void } {
    let busy = false;
    const timer = setInterval(() => {
      const name = dirName();
      if (!name || busy) return;
      busy = true;
      directorySize(join(this.modelRoot, name))
        .then((bytes) => {
          tracker.onDiskSize(bytes);
          changed();
        })
        .catch(() => undefined) // sampling is a hint; the parsed lines still count
        .finally(() => (busy = false));
    }, this.options.diskSampleMs ?? 1000);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }

  private pullError(tag: string, err: ExecaError, errors: string[], tail: string[]): FerryError {
    if (err.isCanceled) return cancelled(tag, err);
    if (err.code === 'ENOENT' || err.code === 'EACCES') return this.unavailable(err);
    const last = errors.at(-1) ?? tail.at(-1) ?? err.shortMessage;
    const how = err.signal ? `was killed by ${err.signal}` : `exited with code ${err.exitCode}`;
    return new FerryError('source.flm_failed', `flm pull ${tag} ${how}: ${last}`, {
      cause: err,
      details: { exit_code: err.exitCode, signal: err.signal, lines: errors.length > 0 ? errors : tail },
    });
  }

  private unavailable(err: ExecaError): FerryError {
    return new FerryError('source.flm_unavailable', `the FLM binary "${this.options.flmBin}" cannot be run (${err.code})`, {
      cause: err,
      hint: 'install FastFlowLM (https://github.com/FastFlowLM/FastFlowLM) on a Ryzen AI machine, or set flm_bin in config.toml to its path',
    });
  }
}

function cancelled(tag: string, cause?: unknown): FerryError {
  return new FerryError('pull.cancelled', `pull of ${tag} was cancelled`, { cause });
}

function pushTail(lines: string[], line: string): void {
  lines.push(line);
  if (lines.length > ERROR_TAIL) lines.shift();
}

interface Throttled {
  (p: FlmProgress): void;
  /** Report now regardless of the interval (the last value must never be dropped). */
  flush(p: FlmProgress): void;
}

/** At most one call per `intervalMs`, and never the same bytes of the same file twice in a row. */
function throttle(fn: ((p: FlmProgress) => void) | undefined, intervalMs: number): Throttled {
  let lastAt = 0;
  let lastBytes = -1;
  let lastFile = -1;
  const call = (p: FlmProgress) => {
    lastAt = Date.now();
    lastBytes = p.bytesDone;
    lastFile = p.fileIndex;
    fn?.(p);
  };
  const throttled = ((p: FlmProgress) => {
    // Nothing new (same bytes, same file) or too soon. A new file is news even when the disk
    // sampler had already counted its bytes.
    if ((p.bytesDone === lastBytes && p.fileIndex === lastFile) || Date.now() - lastAt < intervalMs) return;
    call(p);
  }) as Throttled;
  throttled.flush = (p) => call(p);
  return throttled;
}
