import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { FerryError } from '../../src/errors/ferry-error.js';

let home: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'ferry-config-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({ FERRY_HOME: home, HF_HOME: join(home, 'no-hf'), ...extra });

function configError(toml: string, extra: Record<string, string> = {}): Promise<FerryError> {
  return writeFile(join(home, 'config.toml'), toml).then(() => {
    try {
      loadConfig(env(extra));
    } catch (err) {
      expect(err).toBeInstanceOf(FerryError);
      expect((err as FerryError).code).toBe('config.invalid');
      return err as FerryError;
    }
    throw new Error('expected config.invalid');
  });
}

describe('loadConfig', () => {
  it('puts everything under FERRY_HOME by default', () => {
    const c = loadConfig(env());
    expect(c).toMatchObject({
      home,
      configFile: join(home, 'config.toml'),
      registryDir: join(home, 'registry'),
      modelRoot: join(home, 'models'),
      pullRoot: join(home, 'models', 'local'),
      slotsDir: join(home, 'slots'),
      port: 8080,
      host: '127.0.0.1',
      hfEndpoint: 'https://huggingface.co',
      redisUrl: undefined,
      hfToken: undefined,
    });
  });

  it('defaults FERRY_HOME to ~/.local/share/ferry', () => {
    expect(loadConfig({ HF_HOME: join(home, 'no-hf') }).home).toBe(join(homedir(), '.local', 'share', 'ferry'));
  });

  it('environment overrides: REDIS_URL, PORT, HOST, HF_ENDPOINT, HF_TOKEN win over the file', async () => {
    await writeFile(join(home, 'config.toml'), 'port = 9000\nhost = "0.0.0.0"\nredis_url = "redis://file:6379"\nhf_endpoint = "https://file.example"\nhf_token = "from-file"\n');
    expect(loadConfig(env())).toMatchObject({ port: 9000, host: '0.0.0.0', redisUrl: 'redis://file:6379', hfEndpoint: 'https://file.example', hfToken: 'from-file' });
    const c = loadConfig(env({ PORT: '8181', HOST: '::1', REDIS_URL: 'redis://env:6380', HF_ENDPOINT: 'https://mirror.example/', HF_TOKEN: 'from-env' }));
    expect(c).toMatchObject({ port: 8181, host: '::1', redisUrl: 'redis://env:6380', hfEndpoint: 'https://mirror.example', hfToken: 'from-env' });
  });

  it('reads the HF token file when no token is configured', async () => {
    const hfHome = join(home, 'hf');
    await rm(hfHome, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(hfHome));
    await writeFile(join(hfHome, 'token'), 'hf_tokenfromfile\n');
    expect(loadConfig({ FERRY_HOME: home, HF_HOME: hfHome }).hfToken).toBe('hf_tokenfromfile');
  });

  it('takes hal0 paths from config.toml so a hal0 install works as is', async () => {
    await writeFile(
      join(home, 'config.toml'),
      ['registry_dir = "/var/lib/hal0/registry"', 'model_root = "/var/lib/hal0/models"', 'slots_dir = "/etc/hal0/slots"', ''].join('\n'),
    );
    const c = loadConfig(env());
    expect(c.registryDir).toBe('/var/lib/hal0/registry');
    expect(c.modelRoot).toBe('/var/lib/hal0/models');
    expect(c.pullRoot).toBe('/var/lib/hal0/models/local'); // follows the model root unless set
    expect(c.slotsDir).toBe('/etc/hal0/slots');
  });

  it('a bad PORT in the environment is config.invalid naming PORT', () => {
    expect(() => loadConfig(env({ PORT: 'eighty' }))).toThrow(/PORT/);
    expect(() => loadConfig(env({ PORT: '70000' }))).toThrow(FerryError);
  });

  it('an unknown key is config.invalid naming the key', async () => {
    const err = await configError('port = 8080\nregistry_dri = "/x"\n');
    expect(err.message).toContain('registry_dri');
    expect(err.message).toContain(join(home, 'config.toml'));
  });

  it('a value of the wrong type is config.invalid naming the key', async () => {
    const err = await configError('port = "8080"\n');
    expect(err.message).toMatch(/"port"/);
  });

  it('a bad value is config.invalid naming the key, nested keys by their dotted path', async () => {
    expect((await configError('redis_url = "http://nope"\n')).message).toMatch(/"redis_url"/);
    expect((await configError('port = 123456\n')).message).toMatch(/"port"/);
    expect((await configError('[backends.llama]\ncommand = "llama-server"\nhealth_urll = "x"\n')).message).toMatch(/backends\.llama/);
  });

  it('a relative path is config.invalid naming the key', async () => {
    expect((await configError('model_root = "models"\n')).message).toMatch(/"model_root" must be an absolute path/);
  });

  it('TOML that does not parse is config.invalid naming the file and line', async () => {
    const err = await configError('port = 8080\nhost = "unterminated\n');
    expect(err.message).toContain(join(home, 'config.toml'));
    expect(err.message).toMatch(/line 2|:2:|row 2/i);
  });
});
