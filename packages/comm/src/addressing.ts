// Address helpers, as in the reference's distributed.comm: addresses are URIs
// `scheme://location`; a missing scheme means tcp. Scheme-specific parts (resolution, host
// extraction) are delegated to the backend registered for the scheme.

import type { AddressInfo, Server as NetServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { AddressError } from './errors';
import { getBackend } from './registry';

export const DEFAULT_SCHEME = 'tcp';

/** Splits an address into [scheme, location]. With `strict`, the scheme is required. */
export function parseAddress(address: string, strict = false): [scheme: string, location: string] {
  if (typeof address !== 'string') throw new AddressError(`expected an address string, got ${typeof address}`);
  const sep = address.indexOf('://');
  if (sep < 0) {
    if (strict) throw new AddressError(`invalid address ${JSON.stringify(address)}: it must have a scheme, e.g. tcp://${address}`);
    return [DEFAULT_SCHEME, address];
  }
  const scheme = address.slice(0, sep);
  if (!/^[a-z][a-z0-9+.-]*$/i.test(scheme)) throw new AddressError(`invalid scheme in address ${JSON.stringify(address)}`);
  return [scheme.toLowerCase(), address.slice(sep + 3)];
}

export function unparseAddress(scheme: string, location: string): string {
  return `${scheme}://${location}`;
}

/** Canonical form, with the default scheme added when missing. */
export function normalizeAddress(address: string): string {
  const [scheme, location] = parseAddress(address);
  return unparseAddress(scheme, location);
}

/** Replaces symbolic parts (host names) by concrete ones (IP addresses). */
export async function resolveAddress(address: string): Promise<string> {
  const [scheme, location] = parseAddress(address);
  return unparseAddress(scheme, await getBackend(scheme).resolveAddress(location));
}

/** The host (normally an IP address) the address is located on; works for every scheme. */
export function getAddressHost(address: string): string {
  const [scheme, location] = parseAddress(address);
  return getBackend(scheme).getAddressHost(location);
}

/** [host, port] of an IP-based address; throws for schemes without ports (inproc). */
export function getAddressHostPort(address: string): [host: string, port: number] {
  const [scheme, location] = parseAddress(address);
  return getBackend(scheme).getAddressHostPort(location);
}

/**
 * Parses `host:port`, `[v6]:port`, `host`, `v6` or '' (wildcard). A missing port is
 * `defaultPort` (or undefined).
 */
export function parseHostPort(location: string, defaultPort?: number): [host: string, port: number | undefined] {
  let host: string;
  let portText: string | undefined;
  if (location.startsWith('[')) {
    const end = location.indexOf(']');
    if (end < 0) throw new AddressError(`invalid IPv6 location ${JSON.stringify(location)}: missing ']'`);
    host = location.slice(1, end);
    const rest = location.slice(end + 1);
    if (rest.startsWith(':')) portText = rest.slice(1);
    else if (rest !== '') throw new AddressError(`invalid location ${JSON.stringify(location)}`);
  } else {
    const colons = location.split(':').length - 1;
    if (colons === 1) {
      const i = location.indexOf(':');
      host = location.slice(0, i);
      portText = location.slice(i + 1);
    } else {
      host = location; // bare host, or a bare IPv6 address without port
    }
  }
  if (portText === undefined || portText === '') return [host, defaultPort];
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AddressError(`invalid port ${JSON.stringify(portText)} in ${JSON.stringify(location)}`);
  }
  return [host, port];
}

/** `host:port`, bracketing IPv6 hosts. */
export function unparseHostPort(host: string, port?: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '[::]']);

export function isWildcardHost(host: string): boolean {
  return WILDCARD_HOSTS.has(host);
}

/** This machine's first external IPv4 address (127.0.0.1 when it has none), for contact addresses. */
export function getLocalIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return '127.0.0.1';
}

/**
 * An HTTP listen address as operators type it (dashboards, metrics): ':8787', '8787',
 * 'host:8787' or '[::1]:8787'; port 0 picks a free port. The host defaults to `defaultHost`.
 */
export function parseListenAddress(address: string | number, defaultHost: string): { host: string; port: number } {
  const text = String(address).trim();
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AddressError(`invalid listen address ${JSON.stringify(address)} (use :PORT or HOST:PORT; :0 picks a free port)`);
  }
  const host = m[1] ?? (m[2] !== undefined && m[2] !== '' ? m[2] : defaultHost);
  return { host, port };
}

/**
 * Starts an HTTP(S) server listening on `host:port` (port 0: a free one) and resolves with its
 * URL, e.g. `http://127.0.0.1:8787`; rejects if it cannot listen (port taken, bad host).
 */
export function listenHttp(server: NetServer, host: string, port: number, scheme = 'http'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve(unparseAddress(scheme, unparseHostPort(a.address, a.port)));
    });
  });
}
