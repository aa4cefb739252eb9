import type { FerryConfig } from '../config/load-config.js';
import { FerryError } from '../errors/ferry-error.js';
import { isLoopbackName } from '../api/host-allow-list.js';

/**
 * Refuses to serve on anything but loopback without a token: the API can delete weights and
 * start backends, so an open port on a LAN is a remote control for anyone. `allow_unauthenticated
 * = true` overrides, and the caller logs the warning this returns on every start.
 */
export function assertSafeBind(config: FerryConfig): string | undefined {
  const host = config.host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (isLoopbackName(host) || config.apiTokens.length > 0 || config.apiReadTokens.length > 0) return undefined;
  if (config.allowUnauthenticated) {
    return `WARNING: serving on ${config.host} WITHOUT authentication (allow_unauthenticated = true): anyone who can reach port ${config.port} can delete models and start backends`;
  }
  throw new FerryError('config.invalid', `refusing to serve on ${config.host} without a token: set api_tokens in config.toml or FERRY_API_TOKEN`, {
    hint: 'generate one with `openssl rand -hex 32`; or bind to 127.0.0.1; allow_unauthenticated = true overrides (not recommended)',
  });
}
