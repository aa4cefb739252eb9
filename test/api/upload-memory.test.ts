import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dropPrefix } from '../support/pull-harness.js';
import { startApiProcess, type ApiProcess } from '../support/api-process.js';
import { makeTempHome } from '../support/temp-home.js';

let api: ApiProcess;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const temp = await makeTempHome();
  await writeFile(join(temp.home, 'config.toml'), `[registries.local]\nurl = "file://${join(temp.home, 'bento')}"\n`);
  api = await startApiProcess(temp.env);
  cleanup = async () => {
    await api.stop();
    await dropPrefix(temp.config.queuePrefix);
    await temp.cleanup();
  };
}, 30_000);
afterAll(async () => cleanup());

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

it('a 1 GiB text/plain upload to the import route: 415, and the API process grows by less than 20 MB', async () => {
  const before = await rssKb(api.pid);
  let peak = before;
  const sampler = setInterval(() => void rssKb(api.pid).then((kb) => (peak = Math.max(peak, kb)), () => undefined), 20);
  const chunk = Buffer.alloc(1024 * 1024, 'a');
  const total = 1024;
  // A reset can reach this client before the early 415 does (the kernel drops unread answer
  // bytes on RST): that is the client's race, not the server's, so ask again, at most 3 times.
  const upload = () => new Promise<{ status: number; body: string }>((resolve, reject) => {
    let sent = 0;
    let body = '';
    let status = 0;
    // The server answers and closes before the upload is done: the socket may then reset under us.
    const finish = () => (status ? resolve({ status, body }) : reject(new Error('no answer before the connection closed')));
    const req = request(`${api.url}/api/registries/local/import`, { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': String(total * chunk.length) } }, (res) => {
      status = res.statusCode!;
      res.on('data', (c) => (body += c));
      res.on('end', finish);
      res.on('error', finish);
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? setTimeout(finish, 200) : reject(err)));
    const pump = () => {
      while (sent < total) {
        sent += 1;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  let result: { status: number; body: string } | undefined;
  for (let attempt = 1; !result; attempt++) {
    result = await upload().catch((err: Error) => {
      if (attempt >= 3 || !err.message.startsWith('no answer')) throw err;
      return undefined;
    });
  }
  clearInterval(sampler);
  peak = Math.max(peak, await rssKb(api.pid));
  expect(result.status).toBe(415);
  expect(JSON.parse(result.body).error.code).toBe('request.unsupported_media_type');
  expect((peak - before) / 1024, `RSS before ${before} kB, peak ${peak} kB`).toBeLessThan(20);
}, 120_000);
