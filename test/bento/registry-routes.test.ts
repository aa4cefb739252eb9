import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppServices } from '../../src/api/app-services.js';
import { buildApp } from '../../src/api/build-app.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { BentoService } from '../../src/services/bento-service.js';
import { ModelService } from '../../src/services/model-service.js';
import { evilArchive, gnuTar, writeModelDir } from './archive-makers.js';

let work: string;
let app: FastifyInstance;
let base: string;
let bento: BentoService;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-registry-routes-'));
  await mkdir(join(work, 'local'));
  bento = new BentoService({
    registries: { local: { url: `file://${join(work, 'local')}` }, other: { url: `file://${join(work, 'other')}` } },
    home: work,
    limits: { maxBytes: 64 * 1024 * 1024, maxEntries: 1000 },
  });
  const models = new ModelService({ registry: new RegistryStore(join(work, 'hal0')), modelRoot: join(work, 'm'), pullRoot: join(work, 'm/local'), openAIExtras: () => bento.listOpenAI() });
  // Only what these routes call; health and pulls (Redis) belong to other tests.
  app = await buildApp({ services: { models, bento } as unknown as AppServices });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  await rm(work, { recursive: true, force: true });
});

/** A real streamed upload: chunked (no Content-Length), piped from the file as it is read. */
function upload(path: string, file: string, contentType = 'application/octet-stream'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST', headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }));
    });
    req.on('error', reject);
    createReadStream(file).pipe(req);
  });
}

async function modelArchive(name: string, version: string, flag: '-z' | '-J' = '-z', creationTime?: string): Promise<string> {
  const src = join(work, `src-${name}-${version}`);
  await writeModelDir(src, { name, version, creationTime, files: { 'w.bin': Buffer.alloc(1_500_000, version.length), 'sub/c.json': `{"v":"${version}"}` } });
  return gnuTar(src, join(work, `${name}-${version}.bentomodel`), flag);
}

describe('file registries over HTTP', () => {
  it('lists the configured registries', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/registries' });
    expect(res.statusCode).toBe(200);
    expect(res.json().registries.map((r: { name: string; kind: string }) => `${r.name}:${r.kind}`)).toEqual(['local:file', 'other:file']);
  });

  it('imports a streamed archive (gzip and xz), then 409 for the same version', async () => {
    const gz = await modelArchive('qwen', 'v1', '-z', '2026-01-01T00:00:00.000000+00:00');
    const first = await upload('/api/registries/local/import', gz, 'application/gzip');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ registry: 'local', tag: 'qwen:v1', name: 'qwen', version: 'v1' });
    const xz = await modelArchive('qwen', 'v2', '-J', '2026-02-01T00:00:00.000000+00:00');
    expect((await upload('/api/registries/local/import', xz, 'application/x-xz')).status).toBe(201);
    const again = await upload('/api/registries/local/import', gz);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('bento.exists');
  });

  it('answers a refused archive with 400 while the upload is still going, leaving nothing behind', async () => {
    const evil = await evilArchive('symlink-then-file', join(work, 'evil.tgz'));
    const res = await upload('/api/registries/local/import', evil);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bento.unsafe_archive');
    expect((await readdir(join(work, 'local'))).sort()).toEqual(['models']);
  });

  it('lists models newest first, and shows one by latest', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/registries/local/models' });
    expect(res.statusCode).toBe(200);
    expect(res.json().models.map((m: { tag: string }) => m.tag)).toEqual(['qwen:v2', 'qwen:v1']);
    const latest = await app.inject({ method: 'GET', url: '/api/registries/local/models/qwen/latest' });
    expect(latest.json().version).toBe('v2');
    expect((await app.inject({ method: 'GET', url: '/api/registries/nope/models' })).statusCode).toBe(404);
  });

  it('exports a version (streamed) that imports byte-identical into another registry', async () => {
    for (const compression of ['gzip', 'xz']) {
      const res = await fetch(`${base}/api/registries/local/models/qwen/v1/export?compression=${compression}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="qwen-v1.bentomodel"');
      const file = join(work, `exported-${compression}.bentomodel`);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(file, Buffer.from(await res.arrayBuffer()));
      if (compression === 'xz') await rm(join(work, 'other'), { recursive: true, force: true });
      expect((await upload('/api/registries/other/import', file)).status).toBe(201);
      for (const rel of ['model.yaml', 'w.bin', 'sub/c.json']) {
        expect((await readFile(join(work, 'other/models/qwen/v1', rel))).equals(await readFile(join(work, 'local/models/qwen/v1', rel)))).toBe(true);
      }
    }
    expect((await app.inject({ method: 'GET', url: '/api/registries/local/models/qwen/v9/export' })).statusCode).toBe(404);
  });

  it('resolves slot refs to directories and lists the models in /v1/models', async () => {
    expect(await bento.resolveBentoRef('local/qwen:latest')).toBe(join(work, 'local/models/qwen/v2'));
    expect(await bento.resolveBentoRef('local/qwen:v1')).toBe(join(work, 'local/models/qwen/v1'));
    await expect(bento.resolveBentoRef('local/qwen:v7')).rejects.toMatchObject({ code: 'bento.not_found' });
    await expect(bento.resolveBentoRef('nowhere/qwen:v1')).rejects.toMatchObject({ code: 'registry.not_found' });
    const res = await app.inject({ method: 'GET', url: '/v1/models' });
    const ids = res.json().data.map((m: { id: string }) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['local/qwen:v1', 'local/qwen:v2', 'other/qwen:v1']));
  });

  it('deletes a version; latest moves back', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/api/registries/local/models/qwen/v2' });
    expect(res.statusCode).toBe(200);
    expect((await readFile(join(work, 'local/models/qwen/latest'), 'utf8')).trim()).toBe('v1');
    await expect(stat(join(work, 'local/models/qwen/v2'))).rejects.toThrow();
  });

  it('refuses a declared body over archive_max_bytes with 413 before reading it', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/registries/local/import',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(64 * 1024 * 1024 + 1) },
      payload: Buffer.alloc(16),
    });
    expect(res.statusCode).toBe(413);
  });
});
