import { FerryError } from '../errors/ferry-error.js';

/**
 * ioredis' and BullMQ's ways of saying "Redis is not there": refused or reset connections,
 * a connection that is closed or reconnecting (no offline queue), a command that timed out
 * (a frozen server), retries given up. Anything else is not an outage.
 */
const OUTAGE = /Connection is closed|Stream isn't writeable|enableOfflineQueue|Command timed out|Reached the max retries|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|getaddrinfo|NOAUTH|WRONGPASS|LOADING/;

export function isRedisOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return OUTAGE.test(err.message);
}

/** Redis URLs may carry a password: `redis://user:secret@host` -> `redis://***@host`. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** The typed 503 for an outage, naming the URL without its password. */
export function redisUnavailable(err: Error, url: string | undefined): FerryError {
  const where = url ? `Redis at ${redactRedisUrl(url)}` : 'Redis';
  return new FerryError('redis.unavailable', `${where} is not answering (${err.message.split('\n')[0].slice(0, 200)})`, {
    hint: 'start Redis or check REDIS_URL; workers and the API reconnect by themselves',
  });
}
