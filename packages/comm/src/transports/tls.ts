// tls:// — TLS over TCP with mutual authentication, as in the reference: both sides present a
// certificate signed by the configured CA and both verify the other; host names are not
// checked (an internal CA vouches for cluster members, whatever their address).

import { connect as tlsConnect, createServer, type ConnectionOptions, type TLSSocket, type TlsOptions as NodeTlsOptions } from 'node:tls';
import type { ConfigurableComm, ListenOptions, Listener, TlsOptions } from '../comm';
import { TlsError } from '../errors';
import type { Backend, BackendConnectOptions } from '../registry';
import { IpListener, codedError, hostPortForConnect, ipAddressing, peerAddressOf, socketAddresses } from './ip';
import { StreamComm } from './stream-comm';

export function requireTlsMaterial(scheme: string, options: TlsOptions): void {
  const missing = (['ca', 'cert', 'key'] as const).filter((k) => options[k] === undefined);
  if (missing.length > 0) {
    throw new TlsError(`${scheme}:// needs ${missing.join(', ')} (PEM): dd always uses mutual TLS authentication`);
  }
}

export function clientTlsOptions(options: TlsOptions): ConnectionOptions {
  return {
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    ciphers: options.ciphers,
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
  };
}

/**
 * Server side: the client certificate is requested and verified against the CA, but the
 * decision is taken after the TLS handshake (see refuseUnauthorized) rather than by OpenSSL:
 * with TLS 1.3 a rejected client otherwise only sees the connection close, indistinguishable
 * from a server going away, and would keep retrying until its timeout.
 */
export function serverTlsOptions(options: TlsOptions): NodeTlsOptions {
  return {
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    ciphers: options.ciphers,
    requestCert: true,
    rejectUnauthorized: false,
  };
}

/** Why an accepted TLS socket's client is not authorized, or undefined if it is. */
export function unauthorizedReason(socket: TLSSocket): string | undefined {
  if (socket.authorized) return undefined;
  const why = socket.authorizationError === undefined || socket.authorizationError === null ? 'no certificate' : String(socket.authorizationError);
  return `TLS client certificate rejected (${why}); a certificate signed by the cluster CA is required`;
}

/**
 * For a 'tlsClientError': whether the peer sent anything. A TCP connection closed before a
 * ClientHello (port scanner, TCP health check) shows up as ECONNRESET ("socket hang up").
 */
export function tlsPeerSentData(err: Error): boolean {
  return (err as { code?: unknown }).code !== 'ECONNRESET';
}

export const tlsBackend: Backend = {
  ...ipAddressing,

  connect(location: string, options: BackendConnectOptions): Promise<ConfigurableComm> {
    const [host, port] = hostPortForConnect('tls', location);
    requireTlsMaterial('tls', options);
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ ...clientTlsOptions(options), host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(codedError(`connect to tls://${location} timed out after ${options.attemptTimeout} ms`, 'ETIMEDOUT'));
      }, options.attemptTimeout);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        const { local, peer } = socketAddresses('tls', socket);
        resolve(new StreamComm(socket, local, peer, options.limits, true));
      });
    });
  },

  createListener(location: string, onComm: (comm: ConfigurableComm) => void, options: ListenOptions): Listener {
    requireTlsMaterial('tls', options);
    const server = createServer(serverTlsOptions(options), (socket) => {
      const { local, peer } = socketAddresses('tls', socket);
      const comm = new StreamComm(socket, local, peer, options.limits, false);
      const reason = unauthorizedReason(socket);
      if (reason !== undefined) comm.refusal = { code: 'DD_ERR_TLS', reason };
      onComm(comm);
    });
    server.on('tlsClientError', (err, socket) => {
      options.onHandshakeError?.(
        new TlsError(`TLS negotiation failed: ${err.message}`, { cause: err }),
        peerAddressOf('tls', socket),
        tlsPeerSentData(err),
      );
    });
    return new IpListener('tls', location, server);
  },
};
