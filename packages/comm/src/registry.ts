// Backends by URI scheme. connect()/listen() look the scheme up here, so a new transport is
// one registerBackend() call away. Built-in backends register themselves from index.ts.

import type { CommHandler, ConfigurableComm, ConnectOptions, ListenOptions, Listener } from './comm';
import { AddressError } from './errors';

export interface BackendConnectOptions extends ConnectOptions {
  /** Time for this single attempt (connect() handles retries and the overall deadline). */
  attemptTimeout: number;
}

export interface Backend {
  /** Opens one raw connection to a scheme-less location (no handshake yet). */
  connect(location: string, options: BackendConnectOptions): Promise<ConfigurableComm>;
  /** A listener that hands every raw accepted comm to `onComm` (the handshake is done by listen()). */
  createListener(location: string, onComm: (comm: ConfigurableComm) => void, options: ListenOptions): Listener;
  resolveAddress(location: string): Promise<string>;
  getAddressHost(location: string): string;
  getAddressHostPort(location: string): [host: string, port: number];
}

const backends = new Map<string, Backend>();

export function registerBackend(scheme: string, backend: Backend): void {
  backends.set(scheme.toLowerCase(), backend);
}

export function getBackend(scheme: string): Backend {
  const backend = backends.get(scheme);
  if (backend === undefined) {
    throw new AddressError(`no comm backend for scheme ${JSON.stringify(scheme)}; known schemes: ${[...backends.keys()].join(', ')}`);
  }
  return backend;
}

export function registeredSchemes(): string[] {
  return [...backends.keys()];
}

export type { CommHandler };
