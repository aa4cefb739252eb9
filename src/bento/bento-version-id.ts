import { randomBytes } from 'node:crypto';

/** 100-ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch, as uuid1 counts. */
const GREGORIAN_OFFSET = 0x01b21dd213814000n;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

// Python's uuid1 uses the MAC address; a random node with the multicast bit set is what RFC 4122
// prescribes when there is none, and it keeps hosts apart just as well.
const node = randomBytes(6);
node[0] |= 0x01;
const clockSeq = randomBytes(2).readUInt16BE(0) & 0x3fff;
let lastTicks = 0n;

/**
 * A new version id exactly as BentoML makes one: a time-based UUID (v1), bytes [0:6] and
 * [8:12] kept (time_low, time_mid, clock_seq, two node bytes), base32 without padding,
 * lowercase. Ten bytes are 80 bits, so always 16 characters. Ids made in the same
 * millisecond differ because the 100-ns tick counter is kept strictly increasing.
 */
export function newBentoVersionId(now = Date.now()): string {
  let ticks = BigInt(now) * 10_000n + GREGORIAN_OFFSET;
  if (ticks <= lastTicks) ticks = lastTicks + 1n;
  lastTicks = ticks;
  const bytes = Buffer.alloc(10);
  bytes.writeUInt32BE(Number(ticks & 0xffffffffn), 0);
  bytes.writeUInt16BE(Number((ticks >> 32n) & 0xffffn), 4);
  bytes.writeUInt16BE(0x8000 | clockSeq, 6); // variant bits 10xx, as in uuid1's clock_seq_hi_variant
  node.copy(bytes, 8, 0, 2);
  return base32(bytes);
}

/** RFC 4648 base32, lowercase, no padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}
