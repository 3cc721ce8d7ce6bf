// tcp:// — plain TCP sockets (IPv4 and IPv6), Nagle disabled for latency.

import { connect as netConnect, createServer } from 'node:net';
import type { ConfigurableComm, ListenOptions, Listener } from '../comm';
import type { Backend, BackendConnectOptions } from '../registry';
import { IpListener, codedError, hostPortForConnect, ipAddressing, socketAddresses } from './ip';
import { DirectReads, StreamComm } from './stream-comm';

export const tcpBackend: Backend = {
  ...ipAddressing,

  connect(location: string, options: BackendConnectOptions): Promise<ConfigurableComm> {
    const [host, port] = hostPortForConnect('tcp', location);
    return new Promise((resolve, reject) => {
      // Outgoing sockets read into memory of our choosing (see DirectReads).
      const reads = new DirectReads();
      const socket = netConnect({ host, port, noDelay: true, onread: reads.onread });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(codedError(`connect to tcp://${location} timed out after ${options.attemptTimeout} ms`, 'ETIMEDOUT'));
      }, options.attemptTimeout);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        const { local, peer } = socketAddresses('tcp', socket);
        resolve(new StreamComm(socket, local, peer, options.limits, true, reads));
      });
    });
  },

  createListener(location: string, onComm: (comm: ConfigurableComm) => void, options: ListenOptions): Listener {
    const server = createServer({ noDelay: true }, (socket) => {
      const { local, peer } = socketAddresses('tcp', socket);
      onComm(new StreamComm(socket, local, peer, options.limits, false));
    });
    return new IpListener('tcp', location, server);
  },
};
