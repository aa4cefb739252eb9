import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { CURATED_CATALOGUE } from '../../src/registry/curated.js';
import { writeSlotConfig } from '../../src/slots/slot-config.js';
import { makeTempHome } from '../support/temp-home.js';

let ctx: FerryContext;
let app: FastifyInstance;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  const temp = await makeTempHome();
  cleanup = temp.cleanup;
  ctx = new FerryContext(temp.config);
  app = await buildApp({ services: await ctx.apiServices() });
});
afterEach(async () => {
  await app.close();
  // Building the API's services creates the pull queue, whose meta key BullMQ writes at once.
  const keys = await ctx.redis.keys(`${ctx.config.queuePrefix}:*`);
  if (keys.length) await ctx.redis.del(...keys);
  await ctx.close();
  await cleanup();
});

async function addSlot(name: string, port: number, model?: string): Promise<void> {
  await writeSlotConfig(ctx.config.slotsDir, { slot: { name, port, device: 'cpu', backend: 'llama.cpp' }, model: model ? { default: model, context_size: 4096 } : {}, server: {} });
}

describe('GET /api/slots', () => {
  it('lists slot files with their runtime state', async () => {
    expect((await app.inject('/api/slots')).json()).toEqual({ slots: [] });
    await addSlot('primary', 8081, 'qwen3-4b-q4_k_m');
    await addSlot('embed', 8082);
    await ctx.slots.states.transition('primary', 'warming', { model_id: 'qwen3-4b-q4_k_m', port: 8081 });
    await ctx.slots.states.transition('primary', 'ready');
    const res = await app.inject('/api/slots');
    expect(res.statusCode).toBe(200);
    const { slots } = res.json();
    expect(slots.map((s: { name: string }) => s.name)).toEqual(['embed', 'primary']);
    expect(slots[1]).toMatchObject({ name: 'primary', port: 8081, device: 'cpu', backend: 'llama.cpp', model: 'qwen3-4b-q4_k_m', context_size: 4096, state: 'ready', model_id: 'qwen3-4b-q4_k_m', servable: true, message: null });
    expect(slots[0]).toMatchObject({ name: 'embed', model: null, state: 'offline', servable: false });
  });

  it('shows one slot, 404 for a missing one and 400 for a bad name', async () => {
    await addSlot('primary', 8081, 'm');
    expect((await app.inject('/api/slots/primary')).json()).toMatchObject({ name: 'primary', state: 'offline' });
    const missing = await app.inject('/api/slots/ghost');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('slot.not_found');
    const bad = await app.inject('/api/slots/Bad..Name');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('slot.invalid');
  });

  it('refuses to delete a model a slot references with 409 model.in_use', async () => {
    await mkdir(ctx.config.pullRoot, { recursive: true });
    const file = join(ctx.config.pullRoot, 'tiny.gguf');
    await writeFile(file, 'GGUF tiny');
    await ctx.models.add({ id: 'tiny', path: file });
    await addSlot('primary', 8081, 'tiny');
    const res = await app.inject({ method: 'DELETE', url: '/api/models/tiny' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: 'model.in_use' });
    expect(res.json().error.message).toContain('primary');
    await addSlot('primary', 8081);
    expect((await app.inject({ method: 'DELETE', url: '/api/models/tiny' })).statusCode).toBe(200);
  });
});

describe('GET /api/catalogue', () => {
  it('lists the curated models, filtered, marking the ones already in the registry', async () => {
    const all = (await app.inject('/api/catalogue')).json().models;
    expect(all).toHaveLength(CURATED_CATALOGUE.length);
    expect(all.every((m: { in_registry: boolean }) => m.in_registry === false)).toBe(true);

    const embed = (await app.inject('/api/catalogue?capability=embed&backend=llama.cpp')).json().models;
    expect(embed.map((m: { id: string }) => m.id).sort()).toEqual(['bge-base-en-v1.5-q4_k_m', 'nomic-embed-text-v1.5-q8_0']);

    await mkdir(ctx.config.pullRoot, { recursive: true });
    const file = join(ctx.config.pullRoot, 'bge.gguf');
    await writeFile(file, 'GGUF bge');
    await ctx.models.add({ id: 'bge-base-en-v1.5-q4_k_m', path: file });
    const after = (await app.inject('/api/catalogue?capability=embed')).json().models;
    expect(after.find((m: { id: string }) => m.id === 'bge-base-en-v1.5-q4_k_m').in_registry).toBe(true);

    expect((await app.inject('/api/catalogue?capability=dance')).statusCode).toBe(400);
  });
});
