import type { DestinationStream, Logger, LoggerOptions } from 'pino';
import type { FerryConfig } from '../config/load-config.js';
import { lazyModule } from '../util/lazy-module.js';
import { apiLoggerOptions } from '../api/logger-options.js';

const loadPino = lazyModule<typeof import('pino')>('pino');
/** pino-pretty's CommonJS export is the factory itself. */
const loadPretty = lazyModule<(options: object) => DestinationStream>('pino-pretty');

/**
 * The one place the server's and workers' logger is configured (level, redaction, format), so
 * every process logs the same way. Secrets never reach a log line: the Authorization header
 * (API tokens) and cookies are censored wherever a request is logged.
 */
export function loggerOptions(config: Pick<FerryConfig, 'logLevel'>): LoggerOptions {
  // The redaction (headers, and secrets in logged URLs) is the API's: src/api/logger-options.ts.
  return apiLoggerOptions({ level: config.logLevel }) as LoggerOptions;
}

/** pino-pretty on a terminal (or with log_format = "pretty"), JSON lines otherwise. */
export function usePretty(config: Pick<FerryConfig, 'logFormat'>, stream: { isTTY?: boolean } = process.stderr): boolean {
  return config.logFormat === 'pretty' || (config.logFormat === 'auto' && Boolean(stream.isTTY));
}

/** The logger for `ferry serve` and `ferry worker`; writes to stderr, like every other word the CLI says. */
export function createLogger(config: Pick<FerryConfig, 'logLevel' | 'logFormat'>, destination?: DestinationStream): Logger {
  const { pino } = loadPino();
  const options = loggerOptions(config);
  if (!usePretty(config)) return pino(options, destination ?? process.stderr);
  // In-process and synchronous: a handful of lines, so no transport thread (which costs start-up).
  return pino(options, loadPretty()({ sync: true, colorize: Boolean(process.stderr.isTTY), translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', destination: destination ?? 2 }));
}
