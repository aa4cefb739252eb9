import { FerryError } from '../errors/ferry-error.js';

export type RegistryLocation =
  | { kind: 'file'; path: string }
  | { kind: 'nfs'; server: string; exportPath: string };

/**
 * `file:///abs/path` or `nfs://server:/export/path` (the form `mount -t nfs` takes, with the
 * scheme in front). Anything else is a config error naming the URL.
 */
export function parseRegistryUrl(url: string): RegistryLocation {
  if (url.startsWith('file://')) {
    const path = decodeURIComponent(url.slice('file://'.length));
    if (!path.startsWith('/')) throw badUrl(url, 'file:// needs an absolute path (file:///srv/models)');
    return { kind: 'file', path: stripTrailingSlash(path) };
  }
  const nfs = /^nfs:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\/[^\0]*)$/.exec(url);
  if (nfs) return { kind: 'nfs', server: nfs[1], exportPath: stripTrailingSlash(nfs[2]) };
  throw badUrl(url, 'expected file:///path or nfs://server:/export/path');
}

/** `server:/export/path`, the device string mount(8) takes and mountinfo reports. */
export function nfsDevice(loc: { server: string; exportPath: string }): string {
  return `${loc.server}:${loc.exportPath}`;
}

function stripTrailingSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

function badUrl(url: string, why: string): FerryError {
  return new FerryError('config.invalid', `registry url ${JSON.stringify(url)}: ${why}`);
}
