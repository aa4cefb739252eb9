import { mirrorError } from './mirror-errors.js';

/** At most `perClient` file bodies streaming to one client address at once (config `mirror_max_streams_per_client`). */
export class StreamLimiter {
  private readonly active = new Map<string, number>();

  constructor(private readonly perClient: number) {}

  /** Takes a slot or throws 429; the returned function gives it back (idempotent). */
  acquire(client: string): () => void {
    const n = this.active.get(client) ?? 0;
    if (n >= this.perClient) throw mirrorError('mirror.too_many_streams', `at most ${this.perClient} downloads at once per client`);
    this.active.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.active.get(client) ?? 1) - 1;
      if (left <= 0) this.active.delete(client);
      else this.active.set(client, left);
    };
  }
}
