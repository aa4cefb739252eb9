import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppServices } from '../../src/api/app-services.js';
import { buildApp } from '../../src/api/build-app.js';
import { BentoService } from '../../src/services/bento-service.js';
import { gnuTar, writeModelDir } from './archive-makers.js';

let app: FastifyInstance;
let base: string;
// Mounted while the file is collected, so skipIf below knows whether the full-disk tests can run.
const work = await mkdtemp(join(tmpdir(), 'ferry-import-upload-'));
const small = join(work, 'small');
await mkdir(small);
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small], { stdio: 'ignore' });
  mounted = true;
} catch (err) {
  console.warn(`import-upload: cannot mount a 2 MiB tmpfs (${(err as Error).message}); the full-disk tests are skipped`);
}

beforeAll(async () => {
  const bento = new BentoService({ registries: { local: { url: `file://${join(work, 'local')}` }, small: { url: `file://${small}` } }, home: work, limits: { maxBytes: 1024 ** 3, maxEntries: 100 } });
  app = await buildApp({ services: { bento } as unknown as AppServices });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  if (mounted) execFileSync('umount', [small]);
  await rm(work, { recursive: true, force: true });
});

function post(path: string, body: Readable, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }));
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    body.pipe(req);
  });
}

describe('POST /api/registries/:name/import', () => {
  it('415 request.unsupported_media_type for anything but octet-stream, gzip, x-xz', async () => {
    for (const type of ['text/plain', 'application/json', 'application/x-tar', 'multipart/form-data; boundary=x']) {
      const res = await post('/api/registries/local/import', Readable.from([Buffer.from('{"a":1}')]), { 'content-type': type });
      expect({ type, status: res.status, code: res.body.error?.code }).toEqual({ type, status: 415, code: 'request.unsupported_media_type' });
    }
    expect(await readdir(join(work, 'local')).catch(() => [])).toEqual([]);
  });

  it.skipIf(!mounted)('a declared upload larger than the free space: 507 model.insufficient_disk, nothing left', async () => {
    const res = await post('/api/registries/small/import', Readable.from([Buffer.alloc(16)]), { 'content-type': 'application/octet-stream', 'content-length': String(8 * 1024 * 1024) });
    expect(res.status).toBe(507);
    expect(res.body.error.code).toBe('model.insufficient_disk');
    expect((await readdir(small)).filter((n) => n !== 'models')).toEqual([]);
  });

  it.skipIf(!mounted)('a chunked upload that fills the disk: 507 model.insufficient_disk (not bento.unsafe_archive), nothing left', async () => {
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 7));
    const res = await post('/api/registries/small/import', Readable.from(chunks), { 'content-type': 'application/gzip', 'transfer-encoding': 'chunked' });
    expect(res.status).toBe(507);
    expect(res.body.error.code).toBe('model.insufficient_disk');
    expect((await readdir(small)).filter((n) => n !== 'models')).toEqual([]);
  });

  it.skipIf(!mounted)('an archive whose files need more than the free space: 507 before extraction fills the disk', async () => {
    const dir = join(work, 'big-model');
    await writeModelDir(dir, { name: 'big', version: 'v1', files: { 'zeros.bin': Buffer.alloc(8 * 1024 * 1024) } });
    const archive = await gnuTar(dir, join(work, 'big.tar.gz'), '-z');
    const { createReadStream } = await import('node:fs');
    const res = await post('/api/registries/small/import', createReadStream(archive), { 'content-type': 'application/gzip', 'transfer-encoding': 'chunked' });
    expect(res.status).toBe(507);
    expect(res.body.error.code).toBe('model.insufficient_disk');
    expect((await readdir(small)).filter((n) => n !== 'models')).toEqual([]);
  });
});
