// The transport-independent interface every backend implements. A Comm carries whole
// messages (arbitrary values) in order between exactly two endpoints; there should be one
// reader at a time (as in the reference), while writes may be issued concurrently and are
// sent in call order.

import type { FrameLimits } from '@dd/protocol';

export type Compression = 'lz4' | null;

export interface Comm {
  /** Next message. Messages already received are delivered even after the peer closed; then it rejects with CommClosedError (or the ProtocolError that broke the connection). */
  read(): Promise<unknown>;
  /** Resolves once the message's bytes are handed to the socket (after 'drain' if the socket was full). Rejects with CommClosedError once closed. */
  write(msg: unknown): Promise<void>;
  /** Graceful close: flushes what was written, then closes. Idempotent. */
  close(): Promise<void>;
  /** Immediate close, dropping buffered data. Idempotent. */
  abort(): void;
  readonly closed: boolean;
  readonly localAddress: string;
  readonly peerAddress: string;
  /** Compression agreed in the handshake (null before it and on inproc). */
  readonly compression: Compression;
  /** What the peer said in its handshake (undefined before the handshake). */
  readonly peerInfo: PeerInfo | undefined;
  /** Called once when the comm closes, with the error that closed it, if any. Called at once if already closed. */
  onClose(listener: (error: Error | undefined) => void): void;
}

export interface PeerInfo {
  protocol: number;
  dd: string;
  compression: string[];
}

export interface Refusal {
  /** Error code the client's connect() rejects with (DD_ERR_TLS, DD_ERR_CONNECTION_LIMIT). */
  code: string;
  reason: string;
}

/** Internal surface connect/listen use to finish setting up a comm after its handshake. */
export interface ConfigurableComm extends Comm {
  /** Set by a backend that accepted a connection only to refuse it in the handshake (e.g. an unauthorized TLS client). */
  refusal: Refusal | undefined;
  /**
   * Bytes received of a message not yet complete (0 for transports that deliver whole messages).
   * Before the handshake, above 0 means the peer sent something, just not a whole message.
   */
  readonly partialMessageBytes: number;
  setCompression(compression: Compression): void;
  setPeerInfo(info: PeerInfo): void;
}

export interface Listener {
  /** Starts listening; resolves once the port is bound (port 0 picks a free one). */
  start(): Promise<void>;
  /** Stops accepting connections. Established comms are left alone (their owner closes them). */
  stop(): Promise<void>;
  /** The address bound, with the real port (e.g. tcp://0.0.0.0:40123). */
  readonly listenAddress: string;
  /** An address peers can connect to (wildcard hosts replaced by this machine's IP). */
  readonly contactAddress: string;
}

/** TLS material (PEM strings or Buffers), used by tls:// and wss://. Peers are always verified against `ca`. */
export interface TlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  ciphers?: string;
}

/** Options that apply to every comm, on either side. */
export interface CommOptions extends TlsOptions {
  /** Frame limits enforced on what this side reads. */
  limits?: Partial<FrameLimits>;
  /** Compression this side offers in the handshake (default ['lz4']). Pass [] to disable. */
  compression?: string[];
}

export interface ConnectOptions extends CommOptions {
  /** Total time for connecting, retries and handshake, in ms (default 10 000). */
  timeout?: number;
  /** Stops retrying (connect rejects with CommClosedError) when aborted, e.g. by a closing client. */
  signal?: AbortSignal;
}

export interface ListenOptions extends CommOptions {
  /** Time a new connection has to complete its handshake, in ms (default 10 000). */
  handshakeTimeout?: number;
  /**
   * Admission control, called with each new connection before its handshake: return a reason to
   * refuse it. An admitted comm may be counted until its onClose fires.
   */
  admit?: (comm: Comm) => string | undefined;
  /**
   * Reports connections that failed before or during their handshake (bad input, refused,
   * timeout). `peerSentData` is false when, as far as the transport can tell, no bytes came from
   * the peer: it only opened the connection and closed it or went quiet (port scanners, TCP
   * health checks), or it was refused at the connection limit before anything was read.
   */
  onHandshakeError?: (error: Error, peerAddress: string, peerSentData: boolean) => void;
}

/** Callback a listener calls with each comm whose handshake succeeded. */
export type CommHandler = (comm: Comm) => void;
