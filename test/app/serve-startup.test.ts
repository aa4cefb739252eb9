import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dropPrefix } from '../support/pull-harness.js';
import { freePort, runFerry, startApiProcess } from '../support/api-process.js';
import { makeTempHome } from '../support/temp-home.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function home(configToml = '') {
  const temp = await makeTempHome();
  await writeFile(join(temp.home, 'config.toml'), configToml);
  cleanups.push(async () => {
    await dropPrefix(temp.config.queuePrefix);
    await temp.cleanup();
  });
  return temp;
}

describe('ferry serve on a non-loopback address', () => {
  it('refuses to start without a token, naming api_tokens and FERRY_API_TOKEN', async () => {
    const temp = await home();
    const r = await runFerry(['serve', '--no-worker'], { ...temp.env, HOST: '0.0.0.0', PORT: String(await freePort()) });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/^ferry: config\.invalid: refusing to serve on 0\.0\.0\.0 without a token: set api_tokens in config\.toml or FERRY_API_TOKEN/m);
  });

  it('starts with FERRY_API_TOKEN, and then asks for it', async () => {
    const temp = await home();
    const token = 'a'.repeat(40);
    const api = await startApiProcess({ ...temp.env, HOST: '0.0.0.0', FERRY_API_TOKEN: token });
    cleanups.push(api.stop);
    expect((await fetch(`${api.url}/api/models`)).status).toBe(401);
    expect((await fetch(`${api.url}/api/models`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(api.output()).not.toContain(token);
  });

  it('starts without a token when allow_unauthenticated = true, with a loud warning', async () => {
    const temp = await home('allow_unauthenticated = true\n');
    const api = await startApiProcess({ ...temp.env, HOST: '0.0.0.0' });
    cleanups.push(api.stop);
    expect((await fetch(`${api.url}/api/models`)).status).toBe(200);
    expect(api.output()).toMatch(/WARNING: serving on 0\.0\.0\.0 WITHOUT authentication \(allow_unauthenticated = true\)/);
  });

  it('a short FERRY_API_TOKEN is a config error', async () => {
    const temp = await home();
    const r = await runFerry(['serve', '--no-worker'], { ...temp.env, FERRY_API_TOKEN: 'short' });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/config\.invalid: FERRY_API_TOKEN: each token must be at least 16 characters/);
    expect(r.stderr).not.toContain('short');
  });
});
