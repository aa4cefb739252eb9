import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { makeTempHome } from '../support/temp-home.js';

/** The real `openai` client against a listening Ferry: what OpenAI-compatible tools will do. */
describe('OpenAI client: models.list() and models.retrieve()', () => {
  let ctx: FerryContext;
  let app: FastifyInstance;
  let client: OpenAI;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const temp = await makeTempHome();
    cleanup = temp.cleanup;
    ctx = new FerryContext(temp.config);
    await mkdir(ctx.config.pullRoot, { recursive: true });
    for (const id of ['qwen2.5-0.5b-instruct-q4_k_m', 'tiny-embed']) {
      const file = join(ctx.config.pullRoot, `${id}.gguf`);
      await writeFile(file, `weights of ${id}`);
      await ctx.models.add({ id, path: file });
    }
    app = await buildApp({ services: await ctx.apiServices() });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    client = new OpenAI({ baseURL: `${address}/v1`, apiKey: 'not-needed', maxRetries: 0, timeout: 10_000 });
  });
  afterAll(async () => {
    await app.close();
    await ctx.close();
    await cleanup();
  });

  it('list() pages through every registry model', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      expect(m.object).toBe('model');
      expect(typeof m.created).toBe('number');
      ids.push(m.id);
    }
    expect(ids.sort()).toEqual(['qwen2.5-0.5b-instruct-q4_k_m', 'tiny-embed']);
  });

  it('retrieve(id) answers the same object as the list', async () => {
    const listed = (await client.models.list()).data.find((m) => m.id === 'tiny-embed');
    const one = await client.models.retrieve('tiny-embed');
    expect(one).toEqual(listed);
    expect(one).toMatchObject({ id: 'tiny-embed', object: 'model', owned_by: expect.any(String) });
  });

  it('retrieve() of an unknown id is the client\'s NotFoundError (404, model.not_found)', async () => {
    const err = await client.models.retrieve('no-such-model').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).status).toBe(404);
    expect((err as { error?: { code?: string } }).error?.code).toBe('model.not_found');
  });

  it('GET /v1/models/{id} also takes ids with a slash or a colon (file-registry refs, FLM tags)', async () => {
    const res = await app.inject('/v1/models/local%2Fqwen%3Alatest');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toBe('no model "local/qwen:latest" is served or registered here');
  });
});
