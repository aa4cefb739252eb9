import { api, apiJson, seg } from './api.js';
import { followSse } from './sse-client.js';
import { FINISHED_PULL_STATES, type PullStatus } from './types.js';

/** What the page knows of one pull: the last status, and whether its live stream is connected. */
export interface TrackedPull {
  status: PullStatus;
  /** Set while the stream is down and a reconnect is scheduled. */
  reconnectInMs?: number;
}

const DISCOVER_MS = 2000;

/**
 * Every pull the page shows. `/api/pulls` (polled) finds pulls started anywhere (the CLI, another
 * tab, a slot swap); each unfinished one is then followed live through its SSE stream. Finished
 * pulls stay listed with their outcome. `onFinished` runs once per pull that ends while watched.
 */
export class PullTracker {
  private readonly pulls = new Map<string, TrackedPull>();
  private readonly streams = new Map<string, AbortController>();
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private snapshotCache: TrackedPull[] | undefined;

  constructor(private readonly onFinished: (status: PullStatus) => void) {}

  start(): void {
    void this.discover();
    this.timer = setInterval(() => void this.discover(), DISCOVER_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const c of this.streams.values()) c.abort();
    this.streams.clear();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Active pulls first (newest first), then finished ones (most recently finished first). */
  snapshot(): TrackedPull[] {
    this.snapshotCache ??= [...this.pulls.values()].sort((a, b) => {
      const fa = isFinished(a.status) ? 1 : 0;
      const fb = isFinished(b.status) ? 1 : 0;
      if (fa !== fb) return fa - fb;
      const ta = (fa ? a.status.finished_at : a.status.started_at) ?? Number.MAX_SAFE_INTEGER;
      const tb = (fb ? b.status.finished_at : b.status.started_at) ?? Number.MAX_SAFE_INTEGER;
      return tb - ta || a.status.model_id.localeCompare(b.status.model_id);
    });
    return this.snapshotCache;
  }

  get(modelId: string): TrackedPull | undefined {
    return this.pulls.get(modelId);
  }

  /** A pull this page just started: show it at once and follow its stream. */
  follow(modelId: string): void {
    if (!this.pulls.has(modelId) || isFinished(this.pulls.get(modelId)!.status)) {
      this.update({ ...placeholder(modelId) }, { quiet: true });
    }
    this.openStream(modelId);
  }

  async cancel(modelId: string): Promise<void> {
    const status = await apiJson<PullStatus>(`/api/models/${seg(modelId)}/pull/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    this.update(status);
  }

  private async discover(): Promise<void> {
    try {
      const { pulls } = await apiJson<{ pulls: PullStatus[] }>('/api/pulls');
      for (const status of pulls) {
        const known = this.pulls.get(status.model_id);
        // The stream is fresher than the poll for a pull it follows.
        if (!known || !this.streams.has(status.model_id) || known.status.id !== status.id) this.update(status, { quiet: !known });
        if (!isFinished(status)) this.openStream(status.model_id);
      }
    } catch {
      // shown by the views that fail the same way; discovery tries again in 2 s
    }
  }

  private openStream(modelId: string): void {
    if (this.streams.has(modelId)) return;
    const controller = new AbortController();
    this.streams.set(modelId, controller);
    let ended = false;
    void followSse({
      signal: controller.signal,
      connect: (signal) => api(`/api/models/${seg(modelId)}/pull/stream`, { signal, headers: { accept: 'text/event-stream' } }),
      onEvent: (event) => {
        if (event.event === 'end') ended = true;
        else if (event.event === 'status') this.update(JSON.parse(event.data) as PullStatus, { stream: true });
        const tracked = this.pulls.get(modelId);
        if (tracked?.reconnectInMs !== undefined) this.set(modelId, { ...tracked, reconnectInMs: undefined });
      },
      isDone: () => ended || isFinished(this.pulls.get(modelId)?.status),
      onRetry: (delayMs) => {
        const tracked = this.pulls.get(modelId);
        if (tracked) this.set(modelId, { ...tracked, reconnectInMs: delayMs });
      },
    })
      .catch(() => undefined) // a 404: the pull is gone; the poll keeps its last status
      .finally(() => {
        if (this.streams.get(modelId) === controller) this.streams.delete(modelId);
      });
  }

  private update(status: PullStatus, opts: { quiet?: boolean; stream?: boolean } = {}): void {
    const before = this.pulls.get(status.model_id)?.status;
    this.set(status.model_id, { status });
    const newlyFinished = isFinished(status) && (!before || !isFinished(before) || before.id !== status.id);
    if (newlyFinished && !opts.quiet) this.onFinished(status);
    if (isFinished(status) && !opts.stream) this.streams.get(status.model_id)?.abort();
  }

  private set(modelId: string, tracked: TrackedPull): void {
    this.pulls.set(modelId, tracked);
    this.snapshotCache = undefined;
    for (const fn of this.listeners) fn();
  }
}

export function isFinished(status: PullStatus | undefined): boolean {
  return Boolean(status && FINISHED_PULL_STATES.includes(status.state));
}

function placeholder(modelId: string): PullStatus {
  return {
    id: '',
    model_id: modelId,
    state: 'queued',
    source: '',
    bytes_total: 0,
    bytes_downloaded: 0,
    throughput_bps: 0,
    elapsed_s: 0,
    eta_s: null,
    started_at: null,
    finished_at: null,
    error: null,
    error_code: null,
    files: [],
    attempts: 0,
  };
}
