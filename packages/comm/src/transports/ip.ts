// Pieces shared by the IP-based backends (tcp, tls, ws, wss): address handling, the connect
// attempt with its own timeout, and a listener around a net.Server-like object.

import { lookup } from 'node:dns/promises';
import { isIP, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Listener } from '../comm';
import { getLocalIp, isWildcardHost, parseHostPort, unparseAddress, unparseHostPort } from '../addressing';
import { AddressError } from '../errors';

export function hostPortForConnect(scheme: string, location: string): [string, number] {
  const [host, port] = parseHostPort(location);
  if (port === undefined || port === 0 || isWildcardHost(host)) {
    throw new AddressError(`cannot connect to ${scheme}://${location}: a host and a port are required`);
  }
  return [host, port];
}

export function socketAddresses(scheme: string, socket: Socket): { local: string; peer: string } {
  return {
    local: unparseAddress(scheme, unparseHostPort(socket.localAddress ?? '?', socket.localPort)),
    peer: peerAddressOf(scheme, socket),
  };
}

/**
 * The address of a socket's peer, e.g. `tls://[::1]:51234`. Always built through
 * unparseHostPort: an IPv6 host needs its brackets, or the address cannot be parsed back (and
 * the Server could not tell the peer's host from its port).
 */
export function peerAddressOf(scheme: string, socket: Pick<Socket, 'remoteAddress' | 'remotePort'>): string {
  return unparseAddress(scheme, unparseHostPort(socket.remoteAddress ?? '?', socket.remotePort));
}

export const ipAddressing = {
  async resolveAddress(location: string): Promise<string> {
    const [host, port] = parseHostPort(location);
    if (isWildcardHost(host) || isIP(host) !== 0) return location;
    const { address } = await lookup(host);
    return unparseHostPort(address, port);
  },
  getAddressHost(location: string): string {
    return parseHostPort(location)[0];
  },
  getAddressHostPort(location: string): [string, number] {
    const [host, port] = parseHostPort(location);
    if (port === undefined) throw new AddressError(`address ${JSON.stringify(location)} has no port`);
    return [host, port];
  },
};

/** An Error with a Node-style code, so connect() recognises it as retryable or not. */
export function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Listener over a net.Server-like object (net.Server, tls.Server, http.Server). Tracks nothing
 * about accepted connections: their comms belong to whoever the listener handed them to.
 */
export class IpListener implements Listener {
  private boundHost = '';
  private boundPort = 0;
  private started = false;

  constructor(
    private readonly scheme: string,
    private readonly location: string,
    private readonly server: NetServer,
  ) {}

  async start(): Promise<void> {
    const [host, port] = parseHostPort(this.location, 0);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      const onListening = (): void => {
        this.server.off('error', onError);
        resolve();
      };
      if (host === '') this.server.listen(port, onListening);
      else this.server.listen(port, host, onListening);
    });
    // After start, errors of the listening socket itself are rare (EMFILE on accept); keep them from crashing the process.
    this.server.on('error', () => {});
    const info = this.server.address() as AddressInfo;
    this.boundHost = host === '' ? info.address : host;
    this.boundPort = info.port;
    this.started = true;
  }

  stop(): Promise<void> {
    if (!this.started) return Promise.resolve();
    this.started = false;
    // close() stops accepting at once; its callback would wait for every accepted connection,
    // which the listener does not own, so it is not awaited.
    this.server.close();
    return Promise.resolve();
  }

  get listenAddress(): string {
    return unparseAddress(this.scheme, unparseHostPort(this.boundHost, this.boundPort));
  }

  get contactAddress(): string {
    const host = isWildcardHost(this.boundHost) ? getLocalIp() : this.boundHost;
    return unparseAddress(this.scheme, unparseHostPort(host, this.boundPort));
  }
}
