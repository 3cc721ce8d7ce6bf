// inproc:// — both ends in this process: messages are handed over by reference through the
// peer's inbox, with no serialization and no I/O (the receiver must not mutate what it gets if
// the sender keeps using it). Addresses are inproc://<host>/<pid>/<n>. There is no
// backpressure: a write resolves as soon as the message is queued.

import { hostname } from 'node:os';
import { BaseComm, RESOLVED } from '../base-comm';
import type { ConfigurableComm, ListenOptions, Listener } from '../comm';
import { AddressError } from '../errors';
import type { Backend, BackendConnectOptions } from '../registry';
import { codedError } from './ip';

const HOST = hostname();

/**
 * Listeners and counters, shared by every copy of this module in the process (kept on globalThis
 * under a registered symbol): an application that ends up with two copies of @dd/comm (say, the
 * client's and the scheduler's, installed twice) must still reach a LocalCluster's scheduler at
 * its inproc:// address, and two copies must not hand out the same address.
 */
interface InprocRegistry {
  listeners: Map<string, { onComm: (comm: ConfigurableComm) => void }>;
  nextListenerId: number;
  nextConnectionId: number;
}
const REGISTRY = Symbol.for('dd.comm.inproc');
const registry: InprocRegistry = ((globalThis as { [REGISTRY]?: InprocRegistry })[REGISTRY] ??= {
  listeners: new Map(),
  nextListenerId: 0,
  nextConnectionId: 0,
});
const listeners = registry.listeners;

export class InprocComm extends BaseComm {
  peer: InprocComm | undefined;

  write(msg: unknown): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    this.peer?.receive(msg);
    return RESOLVED;
  }

  /** No serialization happens, so there is nothing to compress. */
  override setCompression(): void {}

  private receive(msg: unknown): void {
    this.deliver(msg);
  }

  /** The peer closed: what it sent before stays readable. */
  private peerClosed(): void {
    this.markClosed(undefined, true);
  }

  close(): Promise<void> {
    this.abort();
    return RESOLVED;
  }

  abort(): void {
    if (this.closed) return;
    this.markClosed(undefined, false);
    this.peer?.peerClosed();
  }

  static pair(listenerAddress: string): [client: InprocComm, server: InprocComm] {
    const clientAddress = `${listenerAddress}/c${++registry.nextConnectionId}`;
    const client = new InprocComm(clientAddress, listenerAddress);
    const server = new InprocComm(listenerAddress, clientAddress);
    client.peer = server;
    server.peer = client;
    return [client, server];
  }
}

class InprocListener implements Listener {
  private running = false;

  constructor(readonly listenAddress: string, readonly onComm: (comm: ConfigurableComm) => void) {}

  get contactAddress(): string {
    return this.listenAddress;
  }

  start(): Promise<void> {
    if (listeners.has(this.listenAddress)) {
      return Promise.reject(codedError(`${this.listenAddress} is already in use`, 'EADDRINUSE'));
    }
    listeners.set(this.listenAddress, this);
    this.running = true;
    return RESOLVED;
  }

  stop(): Promise<void> {
    if (this.running && listeners.get(this.listenAddress) === this) listeners.delete(this.listenAddress);
    this.running = false;
    return RESOLVED;
  }
}

/** A fresh unused location: <host>/<pid>/<n>. */
function newLocation(): string {
  return `${HOST}/${process.pid}/${++registry.nextListenerId}`;
}

function parseLocation(location: string): { host: string; pid: string; id: string } {
  const parts = location.split('/');
  if (parts.length < 3) throw new AddressError(`invalid inproc address inproc://${location}: expected inproc://<host>/<pid>/<n>`);
  return { host: parts[0]!, pid: parts[1]!, id: parts[2]! };
}

export const inprocBackend: Backend = {
  connect(location: string, _options: BackendConnectOptions): Promise<ConfigurableComm> {
    const address = `inproc://${location}`;
    const listener = listeners.get(address);
    if (listener === undefined) {
      return Promise.reject(codedError(`nothing listens on ${address}`, 'ECONNREFUSED'));
    }
    const [client, server] = InprocComm.pair(address);
    // Hand the server end over asynchronously, like a real accept.
    queueMicrotask(() => listener.onComm(server));
    return Promise.resolve(client);
  },

  createListener(location: string, onComm: (comm: ConfigurableComm) => void, _options: ListenOptions): Listener {
    const loc = location === '' || location.endsWith('/') ? newLocation() : location;
    parseLocation(loc);
    return new InprocListener(`inproc://${loc}`, onComm);
  },

  resolveAddress(location: string): Promise<string> {
    return Promise.resolve(location);
  },

  getAddressHost(location: string): string {
    return parseLocation(location).host;
  },

  getAddressHostPort(location: string): [string, number] {
    throw new AddressError(`inproc://${location} has no port`);
  },
};
