import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { assertModelId, hasFlmTagShape, idToFileName, isValidModelId } from '../../src/registry/model-id.js';

const GOOD = [
  'qwen2.5-0.5b-instruct-q4_k_m',
  'nomic-embed-text-v1.5-q8_0',
  'a',
  '0',
  'x'.repeat(128),
  'qwen3:4b',
  'gpt-oss:20b',
  'whisper-v3:turbo',
  'llama3.2:1b',
];

const BAD: Array<[string, unknown]> = [
  ['empty', ''],
  ['too long', 'x'.repeat(129)],
  ['upper case', 'Qwen3-4b'],
  ['slash', 'org/model'],
  ['backslash', 'org\\model'],
  ['dot dot', '..'],
  ['dot dot inside', 'a..b'],
  ['leading dot', '.hidden'],
  ['leading dash', '-rf'],
  ['leading underscore', '_x'],
  ['space', 'my model'],
  ['trailing space', 'model '],
  ['newline', 'model\n'],
  ['nul', 'model\0'],
  ['tab', 'a\tb'],
  ['escape', 'a\u001bb'],
  ['non-ascii', 'modèle'],
  ['two colons', 'a:b:c'],
  ['empty tag size', 'qwen3:'],
  ['empty tag family', ':4b'],
  ['percent-encoded slash left as is', 'a%2Fb'],
  ['not a string', 42],
  ['undefined', undefined],
  ['null', null],
];

describe('model ids', () => {
  it.each(GOOD)('accepts %j', (id) => {
    expect(isValidModelId(id)).toBe(true);
    expect(assertModelId(id)).toBe(id);
  });

  it.each(BAD)('refuses %s with model.invalid_id', (_label, id) => {
    expect(isValidModelId(id)).toBe(false);
    let err: unknown;
    try {
      assertModelId(id);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('model.invalid_id');
    // the message quotes the id without raw control characters and without megabytes of it
    expect((err as FerryError).message).not.toMatch(/[\0\n\t\u001b]/);
    expect((err as FerryError).message.length).toBeLessThan(200);
  });

  it('a huge id is cut short in the message', () => {
    expect(() => assertModelId('A'.repeat(1_000_000))).toThrow(/^invalid model id "A{80}\.\.\."$/);
  });

  it('tells FLM tag shapes apart', () => {
    expect(hasFlmTagShape('qwen3:4b')).toBe(true);
    expect(hasFlmTagShape('qwen3-4b')).toBe(false);
  });

  it("turns ids into file names the way hal0 does", () => {
    expect(idToFileName('qwen3:4b')).toBe('qwen3-4b');
    expect(idToFileName('a.b_c-d')).toBe('a.b_c-d');
  });
});
