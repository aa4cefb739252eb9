/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
 * Ferry: the API on loopback, an in-process worker on the shared Redis (own prefix), the fake Hub
 * (throttled so progress is visible), the fake backend for slots, and a file registry.
 * Screenshots of each view go to $TMPDIR/ferry-dashboard-test-output/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gnuTar, writeModelDir } from '../bento/archive-makers.js';
import { CHROMIUM_PATH, launchChromium, type ChromiumSession } from '../support/browser.js';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { SLOT_CONFIG_TOML, isAlive, readState } from '../support/slot-harness.js';
import { writeSlot } from '../support/slot-harness.js';

const haveChromium = existsSync(CHROMIUM_PATH);
if (!haveChromium) console.warn(`dashboard browser tests skipped: no chromium at ${CHROMIUM_PATH} (apt-get install chromium)`);

export const OUTPUT_DIR = join(tmpdir(), 'ferry-dashboard-test-output');
const MiB = 1024 * 1024;
/** Stands in for helper #10's token guard: API routes need it, `config.public` routes do not. */
const TOKEN = `dash-${randomBytes(12).toString('hex')}`;

let h: PullHarness;
let base: string;
let browser: ChromiumSession;
let page: Page;
let work: string;
const requestUrls: string[] = [];
const authSeen: Array<{ url: string; auth: string | undefined }> = [];
const backendPids: number[] = [];

describe.skipIf(!haveChromium)('the dashboard in Chromium', () => {
  beforeAll(async () => {
    await mkdir(OUTPUT_DIR, { recursive: true });
    work = await mkdtemp(join(tmpdir(), 'ferry-dashboard-'));
    await mkdir(join(work, 'bento-local'));
    h = await startPullHarness({ configToml: `${SLOT_CONFIG_TOML}\n[registries.local]\nurl = "file://${join(work, 'bento-local')}"\n` });

    h.hub.addRepo({ id: 'acme/tiny-GGUF', files: [{ path: 'tiny-q4_k_m.gguf', size: 12 * MiB, seed: 1 }] });
    h.hub.fault('acme/tiny-GGUF', 'tiny-q4_k_m.gguf', { kind: 'slow', bytesPerSecond: 3 * MiB });
    h.hub.addRepo({ id: 'acme/big-GGUF', files: [{ path: 'big-q4_k_m.gguf', size: 256 * MiB, seed: 2 }] });
    h.hub.fault('acme/big-GGUF', 'big-q4_k_m.gguf', { kind: 'slow', bytesPerSecond: 1 * MiB });
    h.hub.addRepo({ id: 'acme/gated-GGUF', gated: true, files: [{ path: 'gated-q4_k_m.gguf', size: 1 * MiB, seed: 3 }] });

    h.app.addHook('onRequest', async (req, reply) => {
      authSeen.push({ url: req.url, auth: req.headers.authorization });
      if ((req.routeOptions.config as { public?: boolean }).public) return;
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        return reply.code(401).send({ error: { code: 'auth.required', message: 'an API token is required', hint: 'send Authorization: Bearer <token>' } });
      }
    });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;

    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('request', (r) => requestUrls.push(r.url()));
  });

  afterAll(async () => {
    await browser?.close();
    await h?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
    for (const pid of backendPids) expect(isAlive(pid), `backend ${pid} left running`).toBe(false);
  });

  it('loads at / without a token, asks for one once (a password field), and sends it as a header only', async () => {
    await page.goto(base + '/');
    const prompt = page.getByLabel('API token', { exact: true });
    await expect.poll(() => prompt.isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await prompt.getAttribute('type')).toBe('password');
    await prompt.fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    const models = page.getByRole('region', { name: 'Models' });
    await expect.poll(() => models.getByRole('table').first().isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => page.getByLabel('API token', { exact: true }).count()).toBe(0);
    // Every view is a landmark with its heading.
    for (const name of ['Models', 'Pulls', 'Slots', 'File registries', 'Workers']) {
      expect(await page.getByRole('region', { name, exact: true }).count(), name).toBe(1);
      expect(await page.getByRole('heading', { name, exact: true, level: 2 }).count(), name).toBe(1);
    }
    expect(await page.evaluate(() => sessionStorage.getItem('ferry.api-token'))).toBe(TOKEN);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    // The shell was fetched without a token; API calls after the prompt carried it.
    expect(authSeen.find((a) => a.url === '/')?.auth).toBeUndefined();
    expect(authSeen.some((a) => a.url === '/api/models' && a.auth === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('pulls a model by clicking Pull: the progress bar rises to its max, then the row is in Models without a reload', async () => {
    const form = page.getByRole('form', { name: 'Pull from Hugging Face' });
    await form.getByLabel('Repository').fill('acme/tiny-GGUF');
    await form.getByLabel('File').fill('tiny-q4_k_m.gguf');
    await form.getByLabel('Id').fill('tiny-q4');
    await form.getByRole('button', { name: 'Pull' }).click();

    const pulls = page.getByRole('region', { name: 'Pulls' });
    const bar = pulls.getByRole('progressbar', { name: 'tiny-q4', exact: true });
    const seen = await sampleProgress(bar, 12 * MiB, 30_000);
    expect(seen.max).toBe(12 * MiB);
    expect(seen.values.some((v) => v > 0 && v < 12 * MiB), `values seen: ${seen.values.join(',')}`).toBe(true);
    expect(isNonDecreasing(seen.values), `values seen: ${seen.values.join(',')}`).toBe(true);
    await pulls.getByRole('article', { name: 'tiny-q4' }).getByText('completed', { exact: true }).waitFor({ timeout: 10_000 });
    await pulls.screenshot({ path: join(OUTPUT_DIR, 'pulls.png') });

    const models = page.getByRole('region', { name: 'Models' });
    const row = models.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'tiny-q4', exact: true }) });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.getByRole('cell').first().textContent()).toBe('12.0 MiB');
    // What the row points at is on disk, with the Hub's digest.
    const entry = await h.ctx.models.get('tiny-q4');
    expect(createHash('sha256').update(await readFile(entry.path)).digest('hex')).toBe(await h.hub.sha256('acme/tiny-GGUF', 'tiny-q4_k_m.gguf'));
    // A row opens its details: files and digests.
    await row.getByRole('button', { name: 'tiny-q4', exact: true }).click();
    const details = models.getByRole('region', { name: 'Details of tiny-q4' });
    await details.waitFor();
    expect(await details.textContent()).toContain(entry.sha256);
    // Verify re-hashes it on a worker; the row then says verified.
    await row.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => row.textContent(), { timeout: 20_000 }).toContain('verified just now');
    expect((await h.ctx.models.get('tiny-q4')).verified_at).toBeTruthy();
    await models.screenshot({ path: join(OUTPUT_DIR, 'models.png') });
  });

  it('cancels a second pull with its Cancel button: the card stays with its outcome, no row is added', async () => {
    const form = page.getByRole('form', { name: 'Pull from Hugging Face' });
    await form.getByLabel('Repository').fill('acme/big-GGUF');
    await form.getByLabel('File').fill('big-q4_k_m.gguf');
    await form.getByLabel('Id').fill('big-q4');
    await form.getByRole('button', { name: 'Pull' }).click();
    const card = page.getByRole('region', { name: 'Pulls' }).getByRole('article', { name: 'big-q4' });
    const bar = card.getByRole('progressbar', { name: 'big-q4' });
    await expect.poll(async () => Number((await bar.getAttribute('value')) ?? 0), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(await card.textContent()).toMatch(/iB\/s · ETA \d/);
    await card.getByRole('button', { name: 'Cancel' }).click();
    await card.getByText('cancelled', { exact: true }).waitFor({ timeout: 15_000 });
    expect(await card.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    expect((await h.app.inject({ url: '/api/models/big-q4/pull/status', headers: { authorization: `Bearer ${TOKEN}` } })).json().state).toBe('cancelled');
    expect(await h.ctx.models.find('big-q4')).toBeUndefined();
  });

  it("shows a gated repo's error code and hint", async () => {
    const form = page.getByRole('form', { name: 'Pull by reference' });
    await form.getByLabel('Reference').fill('hf.co/acme/gated-GGUF:Q4_K_M');
    await form.getByRole('button', { name: 'Pull' }).click();
    const alert = page.locator('#pull-outcome').getByRole('alert');
    await alert.waitFor({ timeout: 10_000 });
    const text = (await alert.textContent()) ?? '';
    expect(text).toContain('source.gated');
    expect(text).toMatch(/Hint: .*HF_TOKEN/);
    expect(text).toContain('licence');

    // By coordinates the API queues it (a worker may hold a token); the worker's refusal shows on the card.
    const coords = page.getByRole('form', { name: 'Pull from Hugging Face' });
    await coords.getByLabel('Repository').fill('acme/gated-GGUF');
    await coords.getByLabel('File').fill('gated-q4_k_m.gguf');
    await coords.getByLabel('Id').fill('gated-q4');
    await coords.getByRole('button', { name: 'Pull' }).click();
    const card = page.getByRole('region', { name: 'Pulls' }).getByRole('article', { name: 'gated-q4' });
    await card.getByText('failed', { exact: true }).waitFor({ timeout: 20_000 });
    const cardText = (await card.getByRole('alert').textContent()) ?? '';
    expect(cardText).toContain('source.gated');
    expect(cardText).toMatch(/accept the licence .*HF_TOKEN/);
  });

  it('assigns a slot (fake backend) and shows its state changing until ready; Delete explains the 409 while it is used', async () => {
    await mkdir(h.ctx.config.pullRoot, { recursive: true });
    const file = join(h.ctx.config.pullRoot, 'slot-model.gguf');
    await writeFile(file, 'GGUF fake weights for the dashboard test');
    await h.ctx.models.add({ id: 'slot-model', path: file });
    await writeSlot(h.ctx.config.slotsDir, 'primary');
    const slots = page.getByRole('region', { name: 'Slots' });
    const row = slots.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'primary', exact: true }) });
    await row.waitFor({ timeout: 10_000 });
    await row.getByLabel('Model for primary').fill('slot-model');
    await row.getByRole('button', { name: 'Assign' }).click();
    const state = row.getByTestId('slot-state');
    await expect.poll(() => state.textContent(), { timeout: 20_000 }).toBe('ready');
    const trail = (await row.getByLabel('primary went through').textContent()) ?? '';
    expect(trail).toMatch(/ready$/);
    const onDisk = await readState(h.ctx.config.slotsDir, 'primary');
    expect(onDisk).toMatchObject({ state: 'ready', model_id: 'slot-model' });
    backendPids.push(onDisk.pid as number);
    await slots.screenshot({ path: join(OUTPUT_DIR, 'slots.png') });

    // The Models row shows the slot, and Delete explains why it is refused.
    await page.reload(); // the token survives a reload of the tab (sessionStorage)
    const models = page.getByRole('region', { name: 'Models' });
    const modelRow = models.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'slot-model', exact: true }) });
    await modelRow.waitFor({ timeout: 10_000 });
    await expect.poll(() => modelRow.textContent(), { timeout: 5000 }).toContain('primary');
    await modelRow.getByRole('button', { name: 'Delete' }).click();
    await models.getByRole('button', { name: 'Confirm delete' }).click();
    const alert = models.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    expect(text).toContain('model.in_use');
    expect(text).toContain('A slot uses this model (primary)');
    expect(await h.ctx.models.find('slot-model')).toBeDefined();
  });

  it('deletes a model: the row goes and so do its weights', async () => {
    const models = page.getByRole('region', { name: 'Models' });
    await models.getByLabel('Search').fill('tiny');
    const row = models.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'tiny-q4', exact: true }) });
    await row.waitFor();
    const path = (await h.ctx.models.get('tiny-q4')).path;
    await row.getByRole('button', { name: 'Delete' }).click();
    await models.getByRole('button', { name: 'Confirm delete' }).click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    expect(await h.ctx.models.find('tiny-q4')).toBeUndefined();
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
    await models.getByLabel('Search').fill('');
  });

  it('imports a .bentomodel by upload, lists it newest first, and exports it as a download', async () => {
    const dir = join(work, 'bento-src');
    await writeModelDir(dir, { name: 'qwen', version: 'v1', files: { 'weights.bin': randomBytes(4096) } });
    const archive = await gnuTar(dir, join(work, 'qwen-v1.bentomodel'), '-z');
    const registries = page.getByRole('region', { name: 'File registries' });
    const panel = registries.getByRole('region', { name: /^local/ });
    await panel.getByLabel('Archive (.bentomodel)').setInputFiles(archive);
    await panel.getByRole('button', { name: 'Import' }).click();
    await panel.getByText('Imported qwen:v1.').waitFor({ timeout: 15_000 });
    const row = panel.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'qwen:v1' }) });
    await row.waitFor();
    const stored = await readFile(join(work, 'bento-local', 'models', 'qwen', 'v1', 'weights.bin'));
    expect(stored.equals(await readFile(join(dir, 'weights.bin')))).toBe(true);
    // The upload went as application/octet-stream (what helper #10 will require on this route).
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Export' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^qwen-v1.*\.bentomodel$/);
    const saved = join(work, 'exported.bentomodel');
    await download.saveAs(saved);
    const bytes = await readFile(saved);
    expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]); // gzip
    await registries.screenshot({ path: join(OUTPUT_DIR, 'registries.png') });
  });

  it('shows the connected worker and links the queue dashboard', async () => {
    const workers = page.getByRole('region', { name: 'Workers' });
    await workers.getByText('1 worker connected.').waitFor({ timeout: 10_000 });
    const row = workers.getByRole('row').filter({ has: page.getByRole('rowheader', { name: new RegExp(`:${process.pid}$`) }) });
    expect(await row.textContent()).toContain('pull, verify, warm');
    expect(await workers.getByRole('link', { name: /Queue dashboard/ }).getAttribute('href')).toBe('/admin/queues');
    await workers.screenshot({ path: join(OUTPUT_DIR, 'workers.png') });
  });

  it('fits a narrow window in dark mode, and asked no other host for anything', async () => {
    const narrow = await browser.context.newPage();
    narrow.on('request', (r) => requestUrls.push(r.url()));
    await narrow.setViewportSize({ width: 390, height: 844 });
    await narrow.emulateMedia({ colorScheme: 'dark' });
    await narrow.goto(base + '/');
    await narrow.getByLabel('API token', { exact: true }).fill(TOKEN); // a new tab: sessionStorage is per tab
    await narrow.getByRole('button', { name: 'Use token' }).click();
    await narrow.getByRole('region', { name: 'Models' }).getByRole('rowheader', { name: 'slot-model' }).waitFor({ timeout: 10_000 });
    const { scrollWidth, innerWidth, background } = await narrow.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      background: getComputedStyle(document.body).backgroundColor,
    }));
    expect(scrollWidth, 'the page itself does not scroll sideways; wide tables scroll inside their box').toBeLessThanOrEqual(innerWidth);
    expect(luminance(background)).toBeLessThan(0.2);
    await narrow.screenshot({ path: join(OUTPUT_DIR, 'narrow-dark.png'), fullPage: true });
    await narrow.close();

    const origins = new Set(requestUrls.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:')).map((u) => new URL(u).origin));
    expect([...origins]).toEqual([base]);
    expect(requestUrls.some((u) => u.includes(TOKEN))).toBe(false);
  });
});

/** Reads the bar's value every 100 ms until it reaches `max`. */
async function sampleProgress(bar: Locator, max: number, timeoutMs: number): Promise<{ values: number[]; max: number }> {
  const values: number[] = [];
  const deadline = Date.now() + timeoutMs;
  let seenMax = 0;
  while (Date.now() < deadline) {
    const state = await bar.evaluate((el: HTMLProgressElement) => ({ value: el.hasAttribute('value') ? el.value : null, max: el.max })).catch(() => null);
    if (state && state.value !== null) {
      values.push(state.value);
      seenMax = state.max;
      if (state.value >= max) return { values, max: seenMax };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`progress did not reach ${max} in ${timeoutMs} ms; values: ${values.join(',')}`);
}

function isNonDecreasing(values: number[]): boolean {
  return values.every((v, i) => i === 0 || v >= values[i - 1]);
}

/** Relative luminance of a CSS `rgb(r, g, b)` colour, 0 (black) to 1 (white). */
function luminance(rgb: string): number {
  const [r, g, b] = (rgb.match(/\d+/g) ?? ['255', '255', '255']).slice(0, 3).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}
