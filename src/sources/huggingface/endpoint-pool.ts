import { isFerryError } from '../../errors/ferry-error.js';
import type { DownloadOptions, DownloadResult } from './download-file.js';
import { HfClient, type DownloadResponse, type HfClientOptions, type HubFile, type ResolvedFile } from './hf-client.js';
import { RetryableHubError } from './hub-errors.js';

/** An endpoint that failed (connect error, 5xx, timeout) is tried last for this long. */
const SKIP_MS = 60_000;
/** One that served bytes with the wrong digest: much longer. */
const BAD_BYTES_SKIP_MS = 30 * 60_000;

/**
 * `hf_endpoints`: several Hub endpoints in order of preference (a LAN mirror first, then
 * huggingface.co). Each call goes to the first endpoint not skipped; one that fails is skipped
 * for a while and the next is asked; a not-found from any but the last moves on (an offline
 * mirror may lack the repo). One HfClient per endpoint, so a download thread gets a plain one.
 */
export class PooledHfClient extends HfClient {
  readonly members: HfClient[];
  private readonly skippedUntil = new Map<string, number>();

  constructor(endpoints: string[], options: Omit<HfClientOptions, 'endpoint'> = {}) {
    super({ ...options, endpoint: endpoints[0] });
    this.members = endpoints.map((endpoint) => new HfClient({ ...options, endpoint }));
  }

  /** Members in the order to try now: healthy ones first (in configured order), skipped ones after. */
  ordered(): HfClient[] {
    const now = Date.now();
    const healthy = this.members.filter((m) => (this.skippedUntil.get(m.endpoint) ?? 0) <= now);
    return [...healthy, ...this.members.filter((m) => !healthy.includes(m))];
  }

  skip(member: HfClient, ms = SKIP_MS): void {
    this.skippedUntil.set(member.endpoint, Date.now() + ms);
  }

  override listFiles(repo: string, revision: string, signal?: AbortSignal): Promise<HubFile[]> {
    return this.tryEach((m) => m.listFiles(repo, revision, signal), signal);
  }

  override resolveFile(repo: string, revision: string, path: string, signal?: AbortSignal): Promise<ResolvedFile> {
    return this.tryEach((m) => m.resolveFile(repo, revision, path, signal), signal);
  }

  override openDownload(repo: string, revision: string, path: string, start: number, signal?: AbortSignal): Promise<DownloadResponse> {
    return this.tryEach((m) => m.openDownload(repo, revision, path, start, signal), signal);
  }

  private async tryEach<T>(call: (member: HfClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const order = this.ordered();
    let lastError: unknown;
    for (const [i, member] of order.entries()) {
      try {
        return await call(member);
      } catch (err) {
        if (signal?.aborted) throw err;
        lastError = err;
        const last = i === order.length - 1;
        if (err instanceof RetryableHubError) this.skip(member);
        else if (!(isFerryError(err) && err.code === 'source.not_found' && !last)) throw err;
      }
    }
    throw lastError;
  }
}

/**
 * downloadFile (or its thread variant) with failover across a PooledHfClient's endpoints: each
 * attempt goes to one endpoint. An endpoint that gives up, lacks the file, or sends bytes whose
 * digest does not match (the downloader has already deleted them) is skipped and the next one
 * is tried; a mismatch is never accepted. The partial file left by a failed endpoint is resumed
 * by the next: every endpoint serves the same commit. Any other client: one plain call.
 */
export async function downloadWithFailover(download: (opts: DownloadOptions) => Promise<DownloadResult>, opts: DownloadOptions): Promise<DownloadResult> {
  const pool = opts.client;
  if (!(pool instanceof PooledHfClient)) return download(opts);
  const order = pool.ordered();
  let lastError: unknown;
  for (const [i, member] of order.entries()) {
    const last = i === order.length - 1;
    try {
      // Fewer attempts on an endpoint with others behind it: moving on is the better retry.
      return await download({ ...opts, client: member, maxAttempts: last ? opts.maxAttempts : 2 });
    } catch (err) {
      if (opts.signal.aborted || !isFerryError(err)) throw err;
      lastError = err;
      const badBytes = err.code === 'pull.checksum_mismatch' || err.code === 'pull.size_mismatch';
      if (badBytes) pool.skip(member, BAD_BYTES_SKIP_MS);
      else if (err.code === 'source.unavailable') pool.skip(member);
      else if (err.code !== 'source.not_found') throw err;
      if (last) throw err;
      opts.onEvent?.(`${new URL(member.endpoint).host}: ${err.code}; trying ${new URL(order[i + 1].endpoint).host}`);
    }
  }
  throw lastError;
}
