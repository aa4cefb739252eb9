import { setTimeout as sleep } from 'node:timers/promises';
import type * as Execa from 'execa';
import type { Result, ResultPromise } from 'execa';
import { lazyModule } from '../util/lazy-module.js';

const loadExeca = lazyModule<typeof Execa>('execa');
import { FerryError } from '../errors/ferry-error.js';
import { LineSplitter } from '../util/line-splitter.js';
import { backendEnvironment } from './backend-env.js';
import { expandCommandTemplate, expandTemplateString, type TemplateValue } from './command-template.js';

export interface BackendStartOptions {
  /** Command template, e.g. `llama-server -m {path} --port {port} {extra_args}` (config `backends.<name>.command`). */
  command: string;
  /** Placeholder values; a list value (extra_args) must stand alone as an argument. */
  values: Record<string, TemplateValue>;
  /**
   * Health URL template; ready when it answers 200.
   * @defaultValue `http://127.0.0.1:{port}/health`
   */
  healthUrl?: string;
  /**
   * How long the backend has to become healthy (config `backends.<name>.ready_timeout_s`).
   * @defaultValue 120000
   */
  readyTimeoutMs?: number;
  /**
   * SIGKILL follows SIGTERM after this long when stopping.
   * @defaultValue 10000
   */
  stopGraceMs?: number;
  /**
   * Gap between health checks.
   * @defaultValue 250
   */
  pollIntervalMs?: number;
  /** Added to the inherited environment, from which secrets are removed (the slot's `[server] env`). */
  env?: Record<string, string>;
  cwd?: string;
  /** Aborting while waiting for health stops the backend and rejects with `slot.backend_failed`. */
  signal?: AbortSignal;
  /** Names the backend in error messages (the slot's name). */
  label?: string;
}

export interface BackendExit {
  exitCode?: number;
  signal?: string;
  /** True when SIGKILL was needed after the grace period. */
  forced: boolean;
}

/** Lines of output kept for an error message. */
const TAIL_LINES = 20;

/**
 * A model server (llama-server, `flm serve`, ...) started from a command template without a
 * shell. `start` resolves once the health URL answers 200 and throws `slot.backend_failed`
 * with the last output lines if the process exits first or never gets healthy.
 */
export class BackendProcess {
  private readonly tail: string[] = [];
  private exitInfo?: BackendExit;
  readonly exited: Promise<BackendExit>;

  private constructor(
    readonly argv: string[],
    readonly healthUrl: string,
    private readonly child: ResultPromise,
    private readonly label: string,
  ) {
    const out = new LineSplitter((line) => this.remember(line));
    const err = new LineSplitter((line) => this.remember(line));
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    this.exited = (child as Promise<Result>).then((result) => {
      out.end();
      err.end();
      const spawnError = result.failed && result.exitCode === undefined && !result.signal;
      if (spawnError) this.remember(result.originalMessage ?? result.shortMessage ?? 'could not start');
      this.exitInfo = { exitCode: result.exitCode, signal: result.signal, forced: result.isForcefullyTerminated };
      return this.exitInfo;
    });
  }

  /** Starts the backend and waits until it is healthy. */
  static async start(options: BackendStartOptions): Promise<BackendProcess> {
    const argv = expandCommandTemplate(options.command, options.values);
    const healthUrl = expandTemplateString(options.healthUrl ?? 'http://127.0.0.1:{port}/health', options.values);
    const child = loadExeca().execa(argv[0], argv.slice(1), {
      // Not the worker's whole environment: no HF_TOKEN, API token or Redis password (backend-env.ts).
      env: backendEnvironment(process.env, options.env),
      extendEnv: false,
      cwd: options.cwd,
      stdin: 'ignore',
      buffer: false,
      reject: false,
      forceKillAfterDelay: options.stopGraceMs ?? 10_000,
      // Killed with the worker that started it; a later step decides whether backends outlive it.
      cleanup: true,
    });
    const backend = new BackendProcess(argv, healthUrl, child, options.label ?? argv[0]);
    try {
      await backend.waitHealthy(options);
    } catch (err) {
      await backend.stop();
      throw err;
    }
    return backend;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The last lines the backend printed (stdout and stderr interleaved). */
  outputTail(): string[] {
    return [...this.tail];
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves when the process is gone. */
  async stop(): Promise<BackendExit> {
    if (this.running) this.child.kill('SIGTERM');
    return this.exited;
  }

  private async waitHealthy(options: BackendStartOptions): Promise<void> {
    const timeoutMs = options.readyTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    const poll = options.pollIntervalMs ?? 250;
    for (;;) {
      if (!this.running) throw this.failure(this.describeExit());
      if (options.signal?.aborted) throw this.failure('start was cancelled');
      if (await this.probe(Math.max(1, Math.min(2000, deadline - Date.now())))) return;
      if (!this.running) throw this.failure(this.describeExit());
      if (Date.now() >= deadline) throw this.failure(`not healthy at ${this.healthUrl} within ${Math.round(timeoutMs / 100) / 10} s`);
      await Promise.race([sleep(poll), this.exited]);
    }
  }

  private async probe(timeoutMs: number): Promise<boolean> {
    try {
      const res = await fetch(this.healthUrl, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false; // not listening yet, or still loading
    }
  }

  private describeExit(): string {
    const e = this.exitInfo;
    if (e?.signal) return `exited on ${e.signal} before it was healthy`;
    if (e?.exitCode === undefined) return 'could not be started';
    return `exited with code ${e.exitCode} before it was healthy`;
  }

  private failure(what: string): FerryError {
    const lines = this.outputTail();
    return new FerryError('slot.backend_failed', `backend for ${this.label} ${what}${lines.length ? `: ${lines.at(-1)}` : ''}`, {
      hint: 'the last output lines are in details.lines; check the backend command in config.toml [backends]',
      // Not the argv: extra_args may carry an API key.
      details: { program: this.argv[0], lines },
    });
  }

  private remember(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
  }
}
