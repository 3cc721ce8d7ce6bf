// ws:// and wss:// — WebSocket transport (the `ws` package), for peers behind HTTP proxies and
// for browser clients. Framing: one binary WebSocket message per dd message, holding the packed
// dd frames (prelude + frames). Large messages are sent as WebSocket fragments (prelude, then
// each frame) so payloads are not copied into one buffer; the receiver gets them reassembled.

import { STATUS_CODES, createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { DEFAULT_FRAME_LIMITS, ProtocolError, encodePrelude, packFrames, packedSize, unpackFrames, type FrameLimits } from '@dd/protocol';
import { BaseComm, RESOLVED } from '../base-comm';
import { decodeFrames, encodeFrames } from '../codec';
import type { ConfigurableComm, ListenOptions, Listener } from '../comm';
import { unparseAddress, unparseHostPort } from '../addressing';
import type { Backend, BackendConnectOptions } from '../registry';
import { IpListener, codedError, hostPortForConnect, ipAddressing, peerAddressOf, socketAddresses } from './ip';
import { clientTlsOptions, requireTlsMaterial, serverTlsOptions, tlsPeerSentData, unauthorizedReason } from './tls';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { TlsError } from '../errors';
import { notADdServerError } from '../handshake';

/** Header carrying the reason a wss:// upgrade was refused. */
const REFUSAL_HEADER = 'x-dd-refused';

const PACK_BELOW_BYTES = 64 * 1024;
/** Bytes queued in ws (sender queue + socket buffer) above which write() waits for them to be written. */
const WRITE_HIGH_WATER = 1024 * 1024;
const CLOSE_GRACE_MS = 2000;

/** The bytes of what ws delivered (a Buffer is fine: protocol handles misaligned Buffer frames). */
function toBytes(data: RawData): Uint8Array {
  const bytes = Array.isArray(data) ? Buffer.concat(data) : data;
  return bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
}

export class WsComm extends BaseComm {
  private readonly limits: Partial<FrameLimits> | undefined;

  constructor(private readonly ws: WebSocket, localAddress: string, peerAddress: string, limits: Partial<FrameLimits> | undefined) {
    super(localAddress, peerAddress);
    this.limits = limits;
    let socketError: Error | undefined;
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', (err) => {
      socketError ??= err;
    });
    ws.on('close', () => this.markClosed(socketError, true));
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    let msg: unknown;
    try {
      if (!isBinary) throw new ProtocolError(`peer ${this.peerAddress} sent a text WebSocket message; dd messages are binary`);
      msg = decodeFrames(unpackFrames(toBytes(data), this.limits), this.limits);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.deliver(msg);
  }

  protected override pauseTransport(): void {
    this.ws.pause();
  }

  protected override resumeTransport(): void {
    this.ws.resume();
  }

  write(msg: unknown): Promise<void> {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(this.closedError());
    let frames: Uint8Array[];
    try {
      frames = encodeFrames(msg, this.compression);
    } catch (err) {
      return Promise.reject(err);
    }
    let written = false;
    let waiter: ((err?: Error) => void) | undefined;
    const onWritten = (err?: Error): void => {
      written = true;
      waiter?.(err);
    };
    if (packedSize(frames) < PACK_BELOW_BYTES) {
      this.ws.send(packFrames(frames), { binary: true }, onWritten);
    } else {
      this.ws.send(encodePrelude(frames), { binary: true, fin: false });
      for (let i = 0; i < frames.length; i++) {
        const last = i === frames.length - 1;
        this.ws.send(frames[i]!, { binary: true, fin: last }, last ? onWritten : undefined);
      }
    }
    if (written || this.ws.bufferedAmount <= WRITE_HIGH_WATER) return RESOLVED;
    return new Promise<void>((resolve, reject) => {
      waiter = (err) => (err === undefined || err === null ? resolve() : reject(this.closedError()));
    });
  }

  close(): Promise<void> {
    if (this.closed) return RESOLVED;
    this.markClosed(undefined, false);
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return RESOLVED;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(1000);
    });
  }

  abort(): void {
    this.markClosed(undefined, false);
    this.ws.terminate();
  }
}

/**
 * Statuses to the WebSocket upgrade that mean "there, but not able to answer now": a proxy whose
 * dd server is not up (yet) or a server that is overloaded. connect() retries these as it
 * retries a refused TCP connection.
 */
const RETRYABLE_UPGRADE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/** E.g. "HTTP 404 Not Found". */
function describeStatus(response: IncomingMessage): string {
  const status = response.statusCode ?? 0;
  const text = response.statusMessage !== undefined && response.statusMessage !== '' ? response.statusMessage : STATUS_CODES[status];
  return text === undefined ? `HTTP ${status}` : `HTTP ${status} ${text}`;
}

/** The error for an upgrade answered with anything but 101 Switching Protocols. */
function upgradeFailedError(address: string, response: IncomingMessage): Error {
  const reason = response.headers[REFUSAL_HEADER];
  // A dd wss:// server that rejects the client certificate says why (see verifyClient below).
  if (typeof reason === 'string') return new TlsError(`${address} refused the connection: ${reason}`);
  const status = describeStatus(response);
  if (RETRYABLE_UPGRADE_STATUSES.has(response.statusCode ?? 0)) {
    return codedError(`${address} answered the WebSocket upgrade with ${status}`, 'ECONNREFUSED');
  }
  // Anything else (404, 400 or 426 from an ordinary HTTP server, a redirect, a 500) comes from
  // something that is not a dd server: fail at once rather than retry until the timeout.
  return notADdServerError(address, `${status} to the WebSocket upgrade`);
}

function maxPayload(limits: Partial<FrameLimits> | undefined): number {
  return limits?.maxMessageBytes ?? DEFAULT_FRAME_LIMITS.maxMessageBytes;
}

/** Listener that also tears down the WebSocketServer and its HTTP server. */
class WsListener extends IpListener {
  constructor(scheme: string, location: string, private readonly http: HttpServer, private readonly wss: WebSocketServer) {
    super(scheme, location, http);
  }

  override async stop(): Promise<void> {
    // WebSocketServer.close() does not close established clients (ws >= 8); their comms do.
    this.wss.close();
    await super.stop();
  }
}

function makeWsBackend(scheme: 'ws' | 'wss'): Backend {
  const secure = scheme === 'wss';
  return {
    ...ipAddressing,

    connect(location: string, options: BackendConnectOptions): Promise<ConfigurableComm> {
      const [host, port] = hostPortForConnect(scheme, location);
      if (secure) requireTlsMaterial(scheme, options);
      const address = unparseAddress(scheme, unparseHostPort(host, port));
      const url = `${address}/`;
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, {
          perMessageDeflate: false,
          maxPayload: maxPayload(options.limits),
          handshakeTimeout: options.attemptTimeout,
          ...(secure ? clientTlsOptions(options) : {}),
        });
        const timer = setTimeout(() => {
          ws.terminate();
          reject(codedError(`connect to ${url} timed out after ${options.attemptTimeout} ms`, 'ETIMEDOUT'));
        }, options.attemptTimeout);
        ws.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        ws.once('unexpected-response', (_req, response) => {
          clearTimeout(timer);
          ws.terminate();
          response.resume();
          reject(upgradeFailedError(address, response));
        });
        ws.once('open', () => {
          clearTimeout(timer);
          ws.removeAllListeners('error');
          const socket = (ws as unknown as { _socket: Socket })._socket;
          const { local, peer } = socketAddresses(scheme, socket);
          resolve(new WsComm(ws, local, peer, options.limits));
        });
      });
    },

    createListener(location: string, onComm: (comm: ConfigurableComm) => void, options: ListenOptions): Listener {
      if (secure) requireTlsMaterial(scheme, options);
      const http = secure ? createHttpsServer(serverTlsOptions(options)) : createHttpServer();
      const wss = new WebSocketServer({
        server: http,
        perMessageDeflate: false,
        maxPayload: maxPayload(options.limits),
        // wss: client certificates are checked here (see serverTlsOptions) so that a rejected
        // client gets a 403 with the reason instead of a bare connection reset.
        verifyClient: secure
          ? (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void) => {
              const reason = unauthorizedReason(info.req.socket as TLSSocket);
              if (reason === undefined) done(true);
              else done(false, 403, 'Forbidden', { [REFUSAL_HEADER]: reason });
            }
          : undefined,
      });
      wss.on('error', () => {});
      wss.on('connection', (ws, req) => {
        const { local, peer } = socketAddresses(scheme, req.socket);
        onComm(new WsComm(ws, local, peer, options.limits));
      });
      if (secure) {
        http.on('tlsClientError', (err: Error, socket: TLSSocket) => {
          options.onHandshakeError?.(
            new TlsError(`TLS negotiation failed: ${err.message}`, { cause: err }),
            peerAddressOf(scheme, socket),
            tlsPeerSentData(err),
          );
        });
      }
      return new WsListener(scheme, location, http, wss);
    },
  };
}

export const wsBackend = makeWsBackend('ws');
export const wssBackend = makeWsBackend('wss');
