import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { JavaScriptTypeBuilder, Static } from '@sinclair/typebox';
import { parse as parseToml, TomlError } from 'smol-toml';
import { FerryError } from '../errors/ferry-error.js';

/**
 * The keys `config.toml` may hold. Unknown keys are an error: a typo should not pass silently.
 * Built on first use: loading typebox costs ~150 ms of start-up, which `ferry model list`
 * should pay only when there is a config file to check.
 */
const buildConfigFileSchema = (Type: JavaScriptTypeBuilder) =>
  Type.Object(
  {
    registry_dir: Type.Optional(Type.String({ minLength: 1 })),
    model_root: Type.Optional(Type.String({ minLength: 1 })),
    pull_root: Type.Optional(Type.String({ minLength: 1 })),
    slots_dir: Type.Optional(Type.String({ minLength: 1 })),
    redis_url: Type.Optional(Type.String({ pattern: '^rediss?://' })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    host: Type.Optional(Type.String({ minLength: 1 })),
    hf_endpoint: Type.Optional(Type.String({ pattern: '^https?://' })),
    /** Several endpoints in order of preference (a LAN Ferry's /hub first); failing ones are skipped for a while. HF_ENDPOINT, when set, wins. */
    hf_endpoints: Type.Optional(Type.Array(Type.String({ pattern: '^https?://' }), { minItems: 1, maxItems: 16 })),
    hf_token: Type.Optional(Type.String()),
    flm_bin: Type.Optional(Type.String({ minLength: 1 })),
    flm_model_path: Type.Optional(Type.String({ minLength: 1 })),
    queue_prefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9{}_.-]+$' })),
    worker_concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** BullMQ job lock; a killed worker's job is taken over after it expires. */
    job_lock_ms: Type.Optional(Type.Integer({ minimum: 1000 })),
    /** On SIGTERM, how long active pulls may run on before they are stopped (their partial files stay). */
    shutdown_grace_s: Type.Optional(Type.Number({ minimum: 0 })),
    /** First retry delay of a failed download request (doubles up to 8x). */
    retry_base_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Seconds without a byte before a download is aborted and resumed. */
    stall_timeout_s: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** Free space kept beyond a pull's remaining bytes. */
    disk_margin_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Write pulled weights with O_DIRECT (bypassing the page cache) where the filesystem allows it. */
    direct_io: Type.Optional(Type.Boolean()),
    /** Files at least this large are downloaded on a worker thread of their own (0: every file). */
    download_thread_min_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Files at least this large are fetched in parts over several connections. */
    parallel_min_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Connections one pull may use at once, shared by its files (1: one stream per file). */
    pull_connections: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** Memory one pull may hold of bytes received ahead of the hashed frontier. */
    pull_memory_bytes: Type.Optional(Type.Integer({ minimum: 8 * 1024 * 1024 })),
    /** Connections a worker keeps open to one Hub endpoint at once, across all its pulls. */
    max_connections_per_host: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
    /** Bytes per second a worker downloads at most, all pulls together (unset: no cap). */
    max_bandwidth_bps: Type.Optional(Type.Integer({ minimum: 1024 })),
    /** The Hub mirror under /hub: serve only what is on disk and never call upstream. */
    mirror_offline: Type.Optional(Type.Boolean()),
    /** Seconds a branch or tag stays bound to one commit in the mirror. */
    mirror_ref_ttl_s: Type.Optional(Type.Number({ minimum: 0 })),
    /** /hub readable without an API token (the LAN reads the mirror); off by default. */
    mirror_public: Type.Optional(Type.Boolean()),
    /** File downloads from /hub streaming at once per client address. */
    mirror_max_streams_per_client: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    /** The server's log level; "debug" adds one line per HTTP request. */
    log_level: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))),
    /** "auto": readable lines on a terminal, JSON otherwise; "pretty" or "json" always. */
    log_format: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('pretty'), Type.Literal('json')])),
    registries: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' }),
        Type.Object(
          { url: Type.String({ pattern: '^(file|nfs)://' }), mount_point: Type.Optional(Type.String()) },
          { additionalProperties: false },
        ),
      ),
    ),
    /** The program that mounts nfs:// registries (`<bin> -t nfs server:/path <mount point>`). */
    mount_bin: Type.Optional(Type.String({ minLength: 1 })),
    /** HTTP trust boundary (issue #10): bearer tokens, read-only tokens, extra Host names, CORS origins. */
    api_tokens: Type.Optional(Type.Array(Type.String({ minLength: 16 }))),
    api_read_tokens: Type.Optional(Type.Array(Type.String({ minLength: 16 }))),
    allowed_hosts: Type.Optional(Type.Array(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9.:\\[\\]-]+$' }))),
    cors_origins: Type.Optional(Type.Array(Type.String({ pattern: '^https?://[^/]+$' }))),
    /** Serve on a non-loopback address without any token (refused at start-up otherwise). */
    allow_unauthenticated: Type.Optional(Type.Boolean()),
    /** Let bull-board's write actions (retry, promote, clean, obliterate, pause, resume, remove) run. */
    dashboard_writable: Type.Optional(Type.Boolean()),
    archive_max_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    archive_max_entries: Type.Optional(Type.Integer({ minimum: 1 })),
    backends: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Object(
          {
            command: Type.String({ minLength: 1 }),
            health_url: Type.Optional(Type.String()),
            ready_timeout_s: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
            /** Seconds between SIGTERM and SIGKILL when the backend is stopped. */
            stop_grace_s: Type.Optional(Type.Number({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
      ),
    ),
  },
  { additionalProperties: false },
);
export type ConfigFile = Static<ReturnType<typeof buildConfigFileSchema>>;

export interface FerryConfig {
  home: string;
  configFile: string;
  registryDir: string;
  modelRoot: string;
  pullRoot: string;
  slotsDir: string;
  /** Undefined: discover (127.0.0.1:6379, else start redis-server). */
  redisUrl?: string;
  port: number;
  host: string;
  hfEndpoint: string;
  /** `hf_endpoints`, else `[hfEndpoint]`; the first is `hfEndpoint`. */
  hfEndpoints: string[];
  /** Read by workers only; never logged, queued or returned. */
  hfToken?: string;
  flmBin: string;
  flmModelPath?: string;
  queuePrefix: string;
  workerConcurrency: number;
  jobLockMs: number;
  shutdownGraceS: number;
  retryBaseMs: number;
  stallTimeoutS: number;
  diskMarginBytes: number;
  directIo: boolean;
  downloadThreadMinBytes: number;
  parallelMinBytes: number;
  pullConnections: number;
  pullMemoryBytes: number;
  maxConnectionsPerHost: number;
  maxBandwidthBps?: number;
  mirrorOffline: boolean;
  mirrorRefTtlS: number;
  mirrorPublic: boolean;
  mirrorMaxStreamsPerClient: number;
  logLevel: string;
  logFormat: 'auto' | 'pretty' | 'json';
  registries: Record<string, { url: string; mount_point?: string }>;
  mountBin: string;
  archiveMaxBytes: number;
  archiveMaxEntries: number;
  /** Full-access API tokens: `api_tokens` plus FERRY_API_TOKEN (comma-separated). Never logged. */
  apiTokens: string[];
  /** Tokens that may only GET/HEAD (`api_read_tokens`). */
  apiReadTokens: string[];
  /** Host names (optionally `name:port`) the API answers besides loopback and its bind address. */
  allowedHosts: string[];
  corsOrigins: string[];
  allowUnauthenticated: boolean;
  dashboardWritable: boolean;
  backends: Record<string, { command: string; health_url?: string; ready_timeout_s?: number; stop_grace_s?: number }>;
}

type Env = Record<string, string | undefined>;

/**
 * Loads FERRY_HOME/config.toml (optional) and applies environment overrides.
 * A malformed file or a bad key is a `config.invalid` error naming the key.
 */
export function loadConfig(env: Env = process.env): FerryConfig {
  const home = resolve(env.FERRY_HOME || join(homedir(), '.local', 'share', 'ferry'));
  const configFile = join(home, 'config.toml');
  const file = readConfigFile(configFile);
  const abs = (key: keyof ConfigFile, value: string | undefined, fallback: string): string => {
    if (value === undefined) return fallback;
    if (!isAbsolute(value)) {
      throw new FerryError('config.invalid', `${configFile}: "${key}" must be an absolute path, got "${value}"`);
    }
    return value;
  };
  const modelRoot = abs('model_root', file.model_root, join(home, 'models'));
  const port = env.PORT !== undefined ? parsePort(env.PORT) : file.port ?? 8080;
  return {
    home,
    configFile,
    registryDir: abs('registry_dir', file.registry_dir, join(home, 'registry')),
    modelRoot,
    pullRoot: abs('pull_root', file.pull_root, join(modelRoot, 'local')),
    slotsDir: abs('slots_dir', file.slots_dir, join(home, 'slots')),
    redisUrl: env.REDIS_URL || file.redis_url,
    port,
    host: env.HOST || file.host || '127.0.0.1',
    ...endpoints(env.HF_ENDPOINT, file),
    hfToken: env.HF_TOKEN || file.hf_token || readHfTokenFile(env),
    flmBin: file.flm_bin ?? 'flm',
    flmModelPath: file.flm_model_path,
    queuePrefix: env.FERRY_QUEUE_PREFIX || file.queue_prefix || '{ferry}',
    workerConcurrency: file.worker_concurrency ?? 2,
    jobLockMs: file.job_lock_ms ?? 30_000,
    shutdownGraceS: file.shutdown_grace_s ?? 10,
    retryBaseMs: file.retry_base_ms ?? 1000,
    stallTimeoutS: file.stall_timeout_s ?? 30,
    diskMarginBytes: file.disk_margin_bytes ?? 256 * 1024 * 1024,
    directIo: file.direct_io ?? true,
    downloadThreadMinBytes: file.download_thread_min_bytes ?? 128 * 1024 * 1024,
    parallelMinBytes: file.parallel_min_bytes ?? 64 * 1024 * 1024,
    pullConnections: file.pull_connections ?? 8,
    pullMemoryBytes: file.pull_memory_bytes ?? 128 * 1024 * 1024,
    maxConnectionsPerHost: file.max_connections_per_host ?? 16,
    maxBandwidthBps: file.max_bandwidth_bps,
    mirrorOffline: file.mirror_offline ?? false,
    mirrorRefTtlS: file.mirror_ref_ttl_s ?? 300,
    mirrorPublic: file.mirror_public ?? false,
    mirrorMaxStreamsPerClient: file.mirror_max_streams_per_client ?? 8,
    logLevel: env.LOG_LEVEL || file.log_level || 'info',
    logFormat: file.log_format ?? 'auto',
    registries: file.registries ?? {},
    mountBin: file.mount_bin ?? 'mount',
    archiveMaxBytes: file.archive_max_bytes ?? 512 * 1024 ** 3,
    archiveMaxEntries: file.archive_max_entries ?? 10_000,
    apiTokens: [...(file.api_tokens ?? []), ...envTokens(env.FERRY_API_TOKEN)],
    apiReadTokens: file.api_read_tokens ?? [],
    allowedHosts: [...(file.allowed_hosts ?? []), ...splitList(env.FERRY_ALLOWED_HOSTS)].map((h) => h.toLowerCase()),
    corsOrigins: file.cors_origins ?? [],
    allowUnauthenticated: file.allow_unauthenticated ?? false,
    dashboardWritable: file.dashboard_writable ?? false,
    backends: file.backends ?? {},
  };
}

/** HF_ENDPOINT (one endpoint) wins; else `hf_endpoints`; else `hf_endpoint`; else huggingface.co. */
function endpoints(envEndpoint: string | undefined, file: ConfigFile): { hfEndpoint: string; hfEndpoints: string[] } {
  const trim = (url: string) => url.replace(/\/+$/, '');
  const list = envEndpoint ? [envEndpoint] : file.hf_endpoints?.length ? file.hf_endpoints : [file.hf_endpoint || 'https://huggingface.co'];
  const hfEndpoints = list.map(trim);
  return { hfEndpoint: hfEndpoints[0], hfEndpoints };
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new FerryError('config.invalid', `cannot read ${path}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseToml(text);
  } catch (err) {
    const where = err instanceof TomlError ? `:${err.line}:${err.column}` : '';
    throw new FerryError('config.invalid', `${path}${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  const require = createRequire(import.meta.url);
  const { Type } = require('@sinclair/typebox') as typeof import('@sinclair/typebox');
  const { Value } = require('@sinclair/typebox/value') as typeof import('@sinclair/typebox/value');
  const first = Value.Errors(buildConfigFileSchema(Type), data).First();
  if (first) {
    const key = first.path.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
    throw new FerryError('config.invalid', `${path}: key "${key}": ${first.message.toLowerCase()}`);
  }
  return data as ConfigFile;
}

/** `a,b, c` -> ['a','b','c']; empty items dropped. */
function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** FERRY_API_TOKEN: one or more tokens, comma-separated; as long as config tokens must be. */
function envTokens(value: string | undefined): string[] {
  const tokens = splitList(value);
  if (tokens.some((t) => t.length < 16)) throw new FerryError('config.invalid', 'FERRY_API_TOKEN: each token must be at least 16 characters', { hint: 'generate one with `openssl rand -hex 32`' });
  return tokens;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new FerryError('config.invalid', `PORT must be an integer 0-65535, got "${value}"`);
  }
  return port;
}

/** The Hub's clients keep a login token in $HF_HOME/token; honour it the same way. */
function readHfTokenFile(env: Env): string | undefined {
  const hfHome = env.HF_HOME || join(homedir(), '.cache', 'huggingface');
  try {
    return readFileSync(join(hfHome, 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
