// Server: the request/response loop of the reference's handle_comm. A connection carries a
// sequence of requests {op, ...args}; each is dispatched to handlers[op] and answered with
// {status: 'OK', result} or {status: 'error', error} unless the handler returns NO_REPLY (or
// the request says reply: false). One request is handled at a time per connection; clients get
// concurrency by opening more connections (see pool.ts). A handler may take the connection over
// for a long-lived stream with server.handleStream(ctx.comm).

import type { Comm, CommOptions, Listener } from './comm';
import { RESOLVED } from './base-comm';
import { listen } from './connect';
import { BadRequestError, CommClosedError, UnknownOpError, errorToWire, type WireError } from './errors';
import { consoleLogger, type Logger } from './logger';
import { getAddressHost, unparseHostPort } from './addressing';
import { WarningThrottle, type WarningDecision } from './warning-throttle';

/** Return this from a handler to send no reply (the handler wrote on ctx.comm itself, or took it over). */
export const NO_REPLY: unique symbol = Symbol.for('dd.comm.no-reply') as never;

export interface HandlerContext {
  comm: Comm;
  server: Server;
  peerAddress: string;
}

// Handlers receive the whole request (op included); typing its fields is the handler's business.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (msg: any, ctx: HandlerContext) => unknown;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StreamHandler = (msg: any, ctx: HandlerContext) => unknown;

export type Reply = { status: 'OK'; result: unknown } | { status: 'error'; error: WireError };

export interface ServerOptions extends CommOptions {
  handlers?: Record<string, Handler>;
  streamHandlers?: Record<string, StreamHandler>;
  /** Most connections served at once; more are refused in their handshake (default 512). */
  connectionLimit?: number;
  name?: string;
  logger?: Logger;
  handshakeTimeout?: number;
  /** How long close() waits for in-flight handlers before aborting their comms (default 5000 ms). */
  closeTimeout?: number;
}

export type ListenTarget = string | number | { port?: number; host?: string; scheme?: string };

export interface HandleStreamOptions {
  onClose?: () => void;
}

const DEFAULT_CONNECTION_LIMIT = 512;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

interface Connection {
  comm: Comm;
  ctx: HandlerContext;
  /** True while a request handler runs (close() lets it finish and reply). */
  busy: boolean;
  /** Resolves when the connection's loop has ended. */
  done: Promise<void>;
}

export class Server {
  readonly name: string;
  readonly logger: Logger;
  private readonly handlers: Map<string, Handler>;
  private readonly streamHandlers: Map<string, StreamHandler>;
  private readonly connectionLimit: number;
  private readonly options: ServerOptions;
  private readonly listeners: Listener[] = [];
  private readonly connections = new Set<Connection>();
  /** Comms handed to handleStream (closed by close(), which ends their loops). */
  private readonly streams = new Set<Comm>();
  /** Comms admitted (handshaking or served); bounded by connectionLimit. */
  private admitted = 0;
  private closing = false;
  private closedPromise: Promise<void> | undefined;
  /** Warnings about peers that are not dd: at most one per host and minute (see logHandshakeError). */
  private readonly handshakeWarnings = new WarningThrottle();

  constructor(options: ServerOptions = {}) {
    this.options = options;
    this.name = options.name ?? 'dd-server';
    this.logger = options.logger ?? consoleLogger(this.name);
    // Maps, not the options objects: an op like "constructor" or "__proto__" must not find Object.prototype members.
    this.handlers = new Map(Object.entries(options.handlers ?? {}));
    this.streamHandlers = new Map(Object.entries(options.streamHandlers ?? {}));
    this.connectionLimit = options.connectionLimit ?? DEFAULT_CONNECTION_LIMIT;
  }

  /** Adds or replaces a request handler. */
  addHandler(op: string, handler: Handler): void {
    this.handlers.set(op, handler);
  }

  addStreamHandler(op: string, handler: StreamHandler): void {
    this.streamHandlers.set(op, handler);
  }

  /** Starts listening; a number or {port, host} means tcp. Port 0 picks a free port. */
  async listen(target: ListenTarget = 0): Promise<Listener> {
    if (this.closing) throw new CommClosedError(`server ${this.name} is closed`);
    const address = typeof target === 'string' ? target
      : typeof target === 'number' ? `tcp://${unparseHostPort('', target)}`
      : `${target.scheme ?? 'tcp'}://${unparseHostPort(target.host ?? '', target.port ?? 0)}`;
    const listener = listen(address, (comm) => this.handleComm(comm), {
      ...this.options,
      admit: (comm) => this.admit(comm),
      onHandshakeError: (err, peer, peerSentData) => this.logHandshakeError(err, peer, peerSentData),
    });
    await listener.start();
    this.listeners.push(listener);
    return listener;
  }

  /**
   * One line per failed connection, no stack (the stack is comm's, not the peer's). Bytes that
   * are not dd (an HTTP client or a misconfigured dd client at this port, another dd version,
   * garbage) are a warning: the operator should see them. A peer that sent nothing (port
   * scanners, health checks that only open a TCP connection) and refusals at the connection
   * limit (peerSentData false: clients back off and retry, so one per attempt under load) stay
   * at debug.
   *
   * The warnings are throttled per peer host (not per port: every connection has a new one):
   * a scanner or a misconfigured health check that keeps connecting gets one warning a
   * minute, the next one saying how many were dropped; the dropped ones go to debug.
   */
  private logHandshakeError(err: Error, peer: string, peerSentData: boolean): void {
    const line = `connection from ${peer} failed before being served: ${err.name}: ${err.message}`;
    if (!peerSentData) {
      this.logger.debug(line);
      return;
    }
    const decision = this.handshakeWarnings.decide(hostOf(peer));
    if (decision.log) this.logger.warn(line + suppressedNote(decision));
    else this.logger.debug(line);
  }

  /** The contact address of the first listener. */
  get address(): string {
    const first = this.listeners[0];
    if (first === undefined) throw new CommClosedError(`server ${this.name} is not listening`);
    return first.contactAddress;
  }

  get listenAddress(): string {
    const first = this.listeners[0];
    if (first === undefined) throw new CommClosedError(`server ${this.name} is not listening`);
    return first.listenAddress;
  }

  /** Connections currently served (handshake done). */
  get connectionCount(): number {
    return this.connections.size;
  }

  private admit(comm: Comm): string | undefined {
    if (this.closing) return `server ${this.name} is closing`;
    if (this.admitted >= this.connectionLimit) {
      return `server ${this.name} is at its connection limit of ${this.connectionLimit}`;
    }
    this.admitted++;
    comm.onClose(() => this.admitted--);
    return undefined;
  }

  /** Serves one handshaken comm until it closes. */
  handleComm(comm: Comm): void {
    if (this.closing) {
      comm.abort();
      return;
    }
    const conn: Connection = {
      comm,
      ctx: { comm, server: this, peerAddress: comm.peerAddress },
      busy: false,
      done: undefined as unknown as Promise<void>,
    };
    this.connections.add(conn);
    conn.done = this.serve(conn).then(
      // Graceful close: a reply written just before must still reach the peer.
      () => comm.close(),
      (err: unknown) => {
        this.logger.error(`connection from ${comm.peerAddress} failed`, err);
        comm.abort();
      },
    ).finally(() => this.connections.delete(conn));
  }

  private async serve(conn: Connection): Promise<void> {
    const { comm, ctx } = conn;
    // Not `while (!comm.closed)`: messages (or the error) that arrived before the close are still read.
    while (!this.closing) {
      let msg: unknown;
      try {
        msg = await comm.read();
      } catch (err) {
        if (!(err instanceof CommClosedError)) {
          this.logger.warn(`closing connection from ${comm.peerAddress}: ${(err as Error).message}`);
        }
        return;
      }
      conn.busy = true;
      try {
        const dispatched = this.dispatch(msg, conn);
        const reply = isThenable(dispatched) ? await dispatched : dispatched;
        if (reply !== undefined && !comm.closed) {
          try {
            const written = comm.write(reply);
            // An already flushed write is not awaited: one microtask hop less per request.
            if (written !== RESOLVED) await written;
          } catch (err) {
            if (comm.closed) return;
            // The result could not be serialized: nothing was written, so an error reply still can be.
            await comm.write(errorReply(err)).catch(() => comm.abort());
          }
        }
      } finally {
        conn.busy = false;
      }
      // `?.`: a null request (msgpack nil) was answered with a BadRequestError above and must
      // not end the loop (reading .close on it would throw and reset the connection).
      if ((msg as { close?: unknown } | null | undefined)?.close === true) {
        await comm.close();
        return;
      }
    }
  }

  /**
   * Runs one request; returns the reply to send (undefined for none). Synchronous handlers are
   * answered without an extra promise: this is the rpc latency path.
   */
  private dispatch(msg: unknown, conn: Connection): Reply | undefined | Promise<Reply | undefined> {
    if (typeof msg !== 'object' || msg === null || typeof (msg as { op?: unknown }).op !== 'string') {
      return errorReply(new BadRequestError(`a request must be an object with a string "op", got ${describe(msg)}`));
    }
    const op = (msg as { op: string }).op;
    const handler = this.handlers.get(op);
    if (handler === undefined) {
      return errorReply(new UnknownOpError(op, [...this.handlers.keys()]));
    }
    const wantsReply = (msg as { reply?: unknown }).reply !== false;
    let result: unknown;
    try {
      result = handler(msg, conn.ctx);
    } catch (err) {
      return wantsReply ? errorReply(err) : undefined;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => (wantsReply && value !== NO_REPLY ? { status: 'OK', result: value } as Reply : undefined),
        (err: unknown) => (wantsReply ? errorReply(err) : undefined),
      );
    }
    return wantsReply && result !== NO_REPLY ? { status: 'OK', result } : undefined;
  }

  /**
   * Reads stream messages from `comm` until it closes, dispatching each to
   * streamHandlers[msg.op]. A wire message is one {op, ...} or an array of them (BatchedSend).
   * Unknown ops and handler failures are logged and skipped; they do not end the stream.
   */
  async handleStream(comm: Comm, options: HandleStreamOptions = {}): Promise<void> {
    const ctx: HandlerContext = { comm, server: this, peerAddress: comm.peerAddress };
    this.streams.add(comm);
    if (this.closing) comm.abort();
    try {
      for (;;) {
        let msgs: unknown;
        try {
          msgs = await comm.read();
        } catch (err) {
          if (!(err instanceof CommClosedError)) {
            this.logger.warn(`stream from ${comm.peerAddress} ended: ${(err as Error).message}`);
          }
          return;
        }
        if (Array.isArray(msgs)) {
          for (let i = 0; i < msgs.length; i++) this.dispatchStream(msgs[i], ctx);
        } else {
          this.dispatchStream(msgs, ctx);
        }
      }
    } finally {
      this.streams.delete(comm);
      try {
        options.onClose?.();
      } catch (err) {
        this.logger.error(`onClose of stream from ${comm.peerAddress} failed`, err);
      }
    }
  }

  private dispatchStream(msg: unknown, ctx: HandlerContext): void {
    const op = typeof msg === 'object' && msg !== null ? (msg as { op?: unknown }).op : undefined;
    const handler = typeof op === 'string' ? this.streamHandlers.get(op) : undefined;
    if (handler === undefined) {
      this.logger.warn(`ignoring stream message with unknown op ${describe(op)} from ${ctx.peerAddress}; known: ${[...this.streamHandlers.keys()].join(', ')}`);
      return;
    }
    try {
      // Stream handlers are not awaited (ordering is by dispatch); an async one's failure is logged.
      const result = handler(msg, ctx);
      if (isThenable(result)) {
        result.then(undefined, (err: unknown) => this.logger.error(`stream handler ${String(op)} failed`, err));
      }
    } catch (err) {
      this.logger.error(`stream handler ${String(op)} failed`, err);
    }
  }

  /**
   * Stops listening, closes idle and streaming connections, lets in-flight request handlers
   * finish and reply (up to closeTimeout), then aborts whatever is left.
   */
  close(): Promise<void> {
    this.closedPromise ??= this.doClose();
    return this.closedPromise;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    await Promise.all(this.listeners.map((l) => l.stop()));
    for (const comm of this.streams) comm.abort();
    for (const conn of this.connections) {
      if (!conn.busy) conn.comm.abort();
    }
    const all = Promise.all([...this.connections].map((c) => c.done));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT_MS);
    });
    await Promise.race([all, bound]);
    clearTimeout(timer);
    for (const conn of this.connections) conn.comm.abort();
  }
}

/** The peer's host, the key of the warning throttle; the whole address if it cannot be parsed. */
function hostOf(peerAddress: string): string {
  try {
    return getAddressHost(peerAddress);
  } catch {
    return peerAddress;
  }
}

/** E.g. " (and 37 more from this host in the last 61 s)"; empty when none were dropped. */
function suppressedNote(decision: Extract<WarningDecision, { log: true }>): string {
  if (decision.suppressed === 0) return '';
  return ` (and ${decision.suppressed} more from this host in the last ${Math.round(decision.sinceMs / 1000)} s)`;
}

export function errorReply(err: unknown): Reply {
  return { status: 'error', error: errorToWire(err) };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  return typeof value;
}
