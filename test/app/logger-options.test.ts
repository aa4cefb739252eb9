import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, usePretty } from '../../src/app/logger-options.js';

describe('logger options (one place for level, redaction and format)', () => {
  it('censors the Authorization header and cookies of a logged request', () => {
    let out = '';
    const sink = new Writable({ write: (chunk, _enc, done) => ((out += chunk.toString()), done()) });
    const log = pino(loggerOptions({ logLevel: 'info' }), sink);
    log.info({ req: { method: 'GET', url: '/x', headers: { authorization: 'Bearer tok-123', cookie: 'sid=abc', host: 'h' } } }, 'request');
    const line = JSON.parse(out) as { req: { headers: Record<string, string> } };
    expect(line.req.headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]', host: 'h' });
    expect(out).not.toContain('tok-123');
  });

  it('pretty on a terminal or when asked, JSON otherwise', () => {
    expect(usePretty({ logFormat: 'auto' }, { isTTY: true })).toBe(true);
    expect(usePretty({ logFormat: 'auto' }, { isTTY: false })).toBe(false);
    expect(usePretty({ logFormat: 'json' }, { isTTY: true })).toBe(false);
    expect(usePretty({ logFormat: 'pretty' }, { isTTY: false })).toBe(true);
  });
});
