// The client's connection to a scheduler: rpc calls (pooled comms), a stream comm for
// update-graph & co. (through a BatchedSend) and for the scheduler's reports. Kept behind an
// interface so the client can be tested against a fake scheduler without sockets.

import { BatchedSend, ConnectionPool, type Comm, type CommOptions } from '@dd/comm';
import type { ClientToSchedulerMsg, RegisterClientReply, SchedulerToClientMsg } from '@dd/protocol';

export interface CallOptions {
  timeout?: number;
}

export interface SchedulerLink {
  /** The scheduler's address. */
  readonly address: string;
  readonly schedulerId: string;
  /** Rpc to the scheduler; resolves to the reply's result. */
  call<T = unknown>(op: string, args?: Record<string, unknown>, options?: CallOptions): Promise<T>;
  /** Rpc to a worker (get-data, update-data for scatter, ...). */
  callWorker<T = unknown>(address: string, op: string, args?: Record<string, unknown>, options?: CallOptions): Promise<T>;
  /** One-way message on the stream (batched). */
  send(msg: ClientToSchedulerMsg): void;
  /** Messages that go out in one write, so the scheduler handles them as one batch. */
  sendAll(msgs: readonly ClientToSchedulerMsg[]): void;
  /** Flushes the stream and closes everything. */
  close(): Promise<void>;
}

export interface LinkHandlers {
  onMessage(msg: SchedulerToClientMsg): void;
  /** The stream closed without close() being called (scheduler gone). */
  onClose(error: Error | undefined): void;
}

export interface LinkOptions {
  clientId: string;
  timeout?: number;
  versions?: Record<string, string>;
  /** BatchedSend interval for the stream, ms (default 0: write at once when idle). */
  batchIntervalMs?: number;
  /** Aborts connecting (a client closing while it reconnects). */
  signal?: AbortSignal;
  /** Options of its connections, to the scheduler and to workers (TLS material, limits). */
  comm?: CommOptions;
}

export type LinkFactory = (address: string, handlers: LinkHandlers, options: LinkOptions) => Promise<SchedulerLink>;

/** The real link over @dd/comm. */
export const commLink: LinkFactory = async (address, handlers, options) => {
  const pool = new ConnectionPool({
    timeout: options.timeout ?? 10_000,
    connectOptions: { ...options.comm, ...(options.signal !== undefined ? { signal: options.signal } : {}) },
  });
  let comm: Comm;
  let reply: unknown;
  try {
    comm = await pool.connect(address);
    await comm.write({ op: 'register-client', client: options.clientId, versions: options.versions ?? {} });
    reply = await comm.read();
  } catch (err) {
    await pool.close();
    throw err;
  }
  const r = reply as { status?: string; result?: RegisterClientReply; error?: { name: string; message: string } };
  if (r.status !== 'OK' || r.result === undefined) {
    await pool.close();
    throw new Error(`scheduler at ${address} refused register-client: ${r.error?.name ?? ''} ${r.error?.message ?? JSON.stringify(reply)}`);
  }
  return new CommLink(address, r.result, pool, comm, handlers, options);
};

class CommLink implements SchedulerLink {
  readonly schedulerId: string;
  private readonly bsend: BatchedSend;
  private closing = false;

  constructor(
    readonly address: string,
    reply: RegisterClientReply,
    private readonly pool: ConnectionPool,
    private readonly comm: Comm,
    private readonly handlers: LinkHandlers,
    options: LinkOptions,
  ) {
    this.schedulerId = reply.schedulerId;
    // Interval 0 (the default) = write when idle: with a batch limit of one message send() writes
    // at once unless a write is in flight; what queues meanwhile goes out together after it. The
    // client already coalesces one tick's submissions into one update-graph.
    const interval = options.batchIntervalMs ?? 0;
    this.bsend = new BatchedSend(
      interval > 0
        ? { intervalMs: interval, name: `client ${options.clientId}` }
        : { intervalMs: 1, maxBatchMessages: 1, name: `client ${options.clientId}` },
    );
    this.bsend.start(comm);
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    let error: Error | undefined;
    try {
      for (;;) {
        const msg = await this.comm.read();
        if (Array.isArray(msg)) {
          for (const m of msg) this.dispatch(m as SchedulerToClientMsg);
        } else {
          this.dispatch(msg as SchedulerToClientMsg);
        }
      }
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    if (!this.closing) this.handlers.onClose(error);
  }

  private dispatch(msg: SchedulerToClientMsg): void {
    try {
      this.handlers.onMessage(msg);
    } catch (err) {
      // A bug handling one message must not stop the stream.
      console.error('dd client: error handling scheduler message', msg?.op, err);
    }
  }

  call<T>(op: string, args?: Record<string, unknown>, options?: CallOptions): Promise<T> {
    return this.pool.call<T>(this.address, op, args, options);
  }

  callWorker<T>(address: string, op: string, args?: Record<string, unknown>, options?: CallOptions): Promise<T> {
    return this.pool.call<T>(address, op, args, options);
  }

  send(msg: ClientToSchedulerMsg): void {
    this.bsend.send(msg);
  }

  sendAll(msgs: readonly ClientToSchedulerMsg[]): void {
    this.bsend.sendAll(msgs);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      await this.bsend.close();
    } catch {
      // Closing over a broken connection: nothing left to flush.
    }
    await this.pool.close();
  }
}
