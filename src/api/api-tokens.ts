import { createHash, timingSafeEqual } from 'node:crypto';

export type TokenAccess = 'write' | 'read';

/**
 * The API's bearer tokens, kept only as SHA-256 digests: a heap dump or a stray log line of
 * this object shows no token. A candidate is hashed and compared with every digest in
 * constant time (digests all have one length, so timingSafeEqual applies), without stopping
 * at the first match, so the time taken says nothing about which token, if any, matched.
 */
export class ApiTokens {
  private readonly digests: Array<{ digest: Buffer; access: TokenAccess }>;

  constructor(tokens: { write: string[]; read: string[] }) {
    this.digests = [
      ...tokens.write.map((t) => ({ digest: sha256(t), access: 'write' as const })),
      ...tokens.read.map((t) => ({ digest: sha256(t), access: 'read' as const })),
    ];
  }

  /** True when at least one token is configured: every non-public route then needs one. */
  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** What the token may do, or undefined when it is none of ours. A write token wins over a read one. */
  check(candidate: string): TokenAccess | undefined {
    const digest = sha256(candidate);
    let found: TokenAccess | undefined;
    for (const entry of this.digests) {
      if (timingSafeEqual(entry.digest, digest) && found !== 'write') found = entry.access;
    }
    return found;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
