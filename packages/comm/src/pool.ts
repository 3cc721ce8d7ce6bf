// rpc over a pool of reusable comms, the reference's model: each comm carries one request at a
// time; concurrent calls to the same peer take other idle comms or open new ones, up to
// `limit` comms in the whole pool, beyond which calls wait for a comm to come back.
//
// Why not multiplexing with request ids: the server side stays the simple sequential
// handle_comm loop that third-party peers (and the reference protocol) expect, a handler may
// take its comm over for a stream, and a slow call only holds up its own comm. The cost is
// one connection per concurrent in-flight call, bounded by `limit`; sequential calls (the
// latency-critical case) reuse one warm comm.

import type { Comm, ConnectOptions } from './comm';
import { RESOLVED } from './base-comm';
import { connect, DEFAULT_CONNECT_TIMEOUT_MS } from './connect';
import { normalizeAddress } from './addressing';
import { CommClosedError, RemoteError, TimeoutError, type WireError } from './errors';

export interface ConnectionPoolOptions {
  /** Most comms open at once across all addresses (default 512). */
  limit?: number;
  /** Connect timeout in ms (default 10 000). */
  timeout?: number;
  connectOptions?: ConnectOptions;
}

export interface CallOptions {
  /**
   * Bound on the whole call, in ms: connecting (when no idle comm is at hand), writing and the
   * reply. On timeout the call rejects with TimeoutError and its comm is dropped (its late reply
   * would desynchronise it). Without it, connecting is bounded by the pool's connect timeout and
   * the reply is awaited as long as the comm lives.
   */
  timeout?: number;
  /** Send the request with reply: false and resolve once it is written. */
  noReply?: boolean;
}

export interface Rpc {
  readonly address: string;
  call<T = unknown>(op: string, args?: Record<string, unknown>, options?: CallOptions): Promise<T>;
}

interface Waiter {
  address: string;
  resolve(comm: Comm): void;
  reject(error: Error): void;
}

const DEFAULT_LIMIT = 512;

export class ConnectionPool {
  readonly limit: number;
  private readonly connectOptions: ConnectOptions;
  /** Idle comms per address, used LIFO (the most recently used comm is the warmest). */
  private readonly idle = new Map<string, Comm[]>();
  /** Comms open or being opened (idle + in use + connecting). */
  private open = 0;
  /** Comms in use, with the address they were opened for. */
  private readonly inUse = new Map<Comm, string>();
  /** Comms handed out by connect(), owned by the caller but closed with the pool. */
  private readonly dedicated = new Set<Comm>();
  private waiters: Waiter[] = [];
  private closed = false;

  constructor(options: ConnectionPoolOptions = {}) {
    this.limit = options.limit ?? DEFAULT_LIMIT;
    this.connectOptions = { ...options.connectOptions, timeout: options.timeout ?? options.connectOptions?.timeout };
  }

  /** A handle for calling ops on `address` through this pool. */
  rpc(address: string): Rpc {
    const normalized = normalizeAddress(address);
    return {
      address: normalized,
      call: <T>(op: string, args?: Record<string, unknown>, options?: CallOptions) => this.call<T>(normalized, op, args, options),
    };
  }

  /** Comms open (idle, in use or connecting). */
  get openCount(): number {
    return this.open;
  }

  get activeCount(): number {
    return this.inUse.size;
  }

  async call<T = unknown>(address: string, op: string, args?: Record<string, unknown>, options?: CallOptions): Promise<T> {
    const timeout = options?.timeout;
    const deadline = timeout === undefined ? 0 : Date.now() + timeout;
    // A warm idle comm is taken synchronously (no promise for the sequential-call case).
    const comm = this.takeIdleForCall(address) ?? await this.acquire(address, timeout);
    const msg: Record<string, unknown> = args === undefined ? { op } : { ...args, op };
    let reply: unknown;
    try {
      if (options?.noReply === true) msg['reply'] = false;
      const written = comm.write(msg);
      // Not awaiting an already flushed write saves a microtask hop on the latency path.
      if (written !== RESOLVED) await written;
      if (options?.noReply === true) {
        this.release(address, comm);
        return undefined as T;
      }
      reply = timeout === undefined ? await comm.read() : await readWithin(comm, Math.max(1, deadline - Date.now()), op, timeout);
    } catch (err) {
      comm.abort();
      this.release(address, comm);
      throw err;
    }
    this.release(address, comm);
    return unwrapReply(reply, comm.peerAddress) as T;
  }

  /** A new comm to `address` that the caller owns (for streams); the pool closes it on close(). */
  async connect(address: string): Promise<Comm> {
    if (this.closed) throw new CommClosedError('connection pool is closed');
    const comm = await connect(address, this.connectOptions);
    this.dedicated.add(comm);
    comm.onClose(() => this.dedicated.delete(comm));
    return comm;
  }

  private takeIdleForCall(address: string): Comm | undefined {
    if (this.closed) return undefined;
    const comm = this.takeIdle(address);
    if (comm !== undefined) this.inUse.set(comm, address);
    return comm;
  }

  /** A comm to `address`; a new one is given at most `timeoutMs` (and the pool's timeout) to connect. */
  private acquire(address: string, timeoutMs?: number): Promise<Comm> {
    if (this.closed) return Promise.reject(new CommClosedError('connection pool is closed'));
    const comm = this.takeIdle(address);
    if (comm !== undefined) {
      this.inUse.set(comm, address);
      return Promise.resolve(comm);
    }
    if (this.open >= this.limit) this.closeOneIdle();
    if (this.open < this.limit) return this.openComm(address, timeoutMs);
    return new Promise((resolve, reject) => this.waiters.push({ address, resolve, reject }));
  }

  private takeIdle(address: string): Comm | undefined {
    const list = this.idle.get(address);
    if (list === undefined) return undefined;
    for (let comm = list.pop(); comm !== undefined; comm = list.pop()) {
      if (!comm.closed) return comm;
      this.open--;
    }
    this.idle.delete(address);
    return undefined;
  }

  /** Makes room for a comm to another address by closing the least recently used idle comm. */
  private closeOneIdle(): void {
    for (const [address, list] of this.idle) {
      const comm = list.shift();
      if (list.length === 0) this.idle.delete(address);
      if (comm !== undefined) {
        this.open--;
        comm.abort();
        return;
      }
    }
  }

  private async openComm(address: string, timeoutMs?: number): Promise<Comm> {
    this.open++;
    let comm: Comm;
    try {
      const options = timeoutMs === undefined
        ? this.connectOptions
        : { ...this.connectOptions, timeout: Math.min(this.connectOptions.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS, timeoutMs) };
      comm = await connect(address, options);
    } catch (err) {
      this.open--;
      this.serveWaiters();
      throw err;
    }
    if (this.closed) {
      comm.abort();
      throw new CommClosedError('connection pool is closed');
    }
    this.inUse.set(comm, address);
    return comm;
  }

  private release(address: string, comm: Comm): void {
    this.inUse.delete(comm);
    if (this.closed) {
      comm.abort();
      return;
    }
    if (comm.closed) {
      // A dead comm leaves the pool; its slot goes to the next waiter.
      this.open--;
      comm.abort();
      this.serveWaiters();
      return;
    }
    // Hand the comm straight to a waiter for the same address, oldest first.
    const i = this.waiters.findIndex((w) => w.address === address);
    if (i >= 0) {
      const waiter = this.waiters.splice(i, 1)[0]!;
      this.inUse.set(comm, address);
      waiter.resolve(comm);
      return;
    }
    let list = this.idle.get(address);
    if (list === undefined) this.idle.set(address, (list = []));
    list.push(comm);
    this.serveWaiters();
  }

  /** Lets waiting calls proceed while there is room (or an idle comm to give up). */
  private serveWaiters(): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0]!;
      const comm = this.takeIdle(waiter.address);
      if (comm === undefined) {
        if (this.open >= this.limit) this.closeOneIdle();
        if (this.open >= this.limit) return;
      }
      this.waiters.shift();
      if (comm !== undefined) {
        this.inUse.set(comm, waiter.address);
        waiter.resolve(comm);
      } else {
        this.openComm(waiter.address).then(waiter.resolve, waiter.reject);
      }
    }
  }

  /**
   * Drops every pooled comm to `address`: idle ones close, calls in progress on one reject with
   * CommClosedError. For a peer known to be gone (the scheduler removed it): a call to a frozen
   * process would otherwise wait for a reply that never comes.
   */
  abortAddress(address: string): void {
    const normalized = normalizeAddress(address);
    const idle = this.idle.get(normalized);
    if (idle !== undefined) {
      this.idle.delete(normalized);
      this.open -= idle.length;
      for (const comm of idle) comm.abort();
    }
    for (const [comm, a] of this.inUse) if (a === normalized) comm.abort(); // its call's release() frees the slot
    this.serveWaiters();
  }

  /** Closes every comm (idle, in use, dedicated); pending and future calls reject with CommClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(new CommClosedError('connection pool is closed'));
    const closing: Array<Promise<void>> = [];
    for (const list of this.idle.values()) for (const comm of list) closing.push(comm.close());
    this.idle.clear();
    for (const comm of this.inUse.keys()) comm.abort();
    for (const comm of this.dedicated) closing.push(comm.close());
    this.open = 0;
    await Promise.all(closing);
  }
}

/** The next message of `comm` within `timeoutMs`; the error names the call's whole bound, `boundMs`. */
function readWithin(comm: Comm, timeoutMs: number, op: string, boundMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new TimeoutError(`call ${JSON.stringify(op)} to ${comm.peerAddress} got no reply within ${boundMs} ms`));
    }, timeoutMs);
    comm.read().then(
      (msg) => {
        clearTimeout(timer);
        resolve(msg);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** {status:'OK', result} -> result; {status:'error', error} -> throws RemoteError. Anything else is returned as is. */
export function unwrapReply(reply: unknown, address?: string): unknown {
  if (typeof reply === 'object' && reply !== null) {
    const r = reply as { status?: unknown; result?: unknown; error?: unknown };
    if (r.status === 'OK') return r.result;
    if (r.status === 'error') {
      const e = (typeof r.error === 'object' && r.error !== null ? r.error : {}) as Partial<WireError>;
      throw new RemoteError(
        {
          name: typeof e.name === 'string' ? e.name : 'Error',
          message: typeof e.message === 'string' ? e.message : String(r.error),
          stack: typeof e.stack === 'string' ? e.stack : undefined,
          code: typeof e.code === 'string' ? e.code : undefined,
        },
        address === undefined ? {} : { address },
      );
    }
  }
  return reply;
}

export interface StandaloneRpc extends Rpc {
  close(): Promise<void>;
}

/** An rpc handle with its own small pool, for one-off use: `const r = rpc(addr); await r.call('ping'); await r.close()`. */
export function rpc(address: string, options: ConnectionPoolOptions = {}): StandaloneRpc {
  const pool = new ConnectionPool({ limit: 16, ...options });
  const handle = pool.rpc(address);
  return { address: handle.address, call: handle.call, close: () => pool.close() };
}
