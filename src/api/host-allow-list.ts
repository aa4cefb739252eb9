import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * Which `Host` headers the API answers. A DNS-rebinding page reaches 127.0.0.1 under its own
 * name (`Host: evil.example`), so refusing unknown names stops it even without a token.
 * Allowed: loopback names and addresses with any port, the bind address (for a wildcard bind,
 * every address of this machine's interfaces) with any port, and `allowed_hosts` entries:
 * `name` matches any port, `name:port` only that port.
 */
export class HostAllowList {
  private readonly anyPort = new Set<string>();
  private readonly exact = new Set<string>();

  constructor(opts: { bindHost: string; allowedHosts: string[] }) {
    for (const name of bindAddresses(opts.bindHost)) this.anyPort.add(name);
    for (const entry of opts.allowedHosts) {
      const parsed = splitHostPort(entry.toLowerCase());
      if (!parsed) continue;
      if (parsed.port === undefined) this.anyPort.add(parsed.name);
      else this.exact.add(`${parsed.name}:${parsed.port}`);
    }
  }

  /** `host` is a Host header value or the host part of an Origin (`name[:port]`, IPv6 in brackets). */
  allows(host: string | undefined): boolean {
    if (!host) return false;
    const parsed = splitHostPort(host.toLowerCase());
    if (!parsed) return false;
    if (isLoopbackName(parsed.name) || this.anyPort.has(parsed.name)) return true;
    return parsed.port !== undefined && this.exact.has(`${parsed.name}:${parsed.port}`);
  }
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

function bindAddresses(bindHost: string): string[] {
  const host = bindHost.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (!WILDCARDS.has(host)) return [host];
  const addresses: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) addresses.push(a.address.toLowerCase().replace(/%.*$/, ''));
  return addresses;
}

/** localhost, *.localhost (RFC 6761: always loopback), 127.0.0.0/8, ::1. */
export function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}

/** `name[:port]` -> parts, IPv6 without brackets, a trailing dot dropped; undefined when malformed. */
export function splitHostPort(value: string): { name: string; port?: number } | undefined {
  let name: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(value);
  if (v6) {
    name = v6[1];
    portText = v6[2];
  } else {
    const m = /^([a-z0-9._-]+?)\.?(?::(\d{1,5}))?$/.exec(value);
    if (!m) return undefined;
    name = m[1];
    portText = m[2];
  }
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && port > 65535) return undefined;
  return { name, port };
}
