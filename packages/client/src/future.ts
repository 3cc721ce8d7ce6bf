// Future: a handle on a remote task's result. Every Future for a key shares one FutureState
// (status, error, cached value); the client counts Futures per key and tells the scheduler when
// the last one goes away.

import type { TaskDefinition, WireError } from '@dd/protocol';
import { CancelledError, TimeoutError, FutureLostError } from './errors';

export type FutureStatus = 'pending' | 'finished' | 'error' | 'cancelled' | 'lost';

/** What a Future needs from its client (implemented by Client). */
export interface FutureOwner {
  readonly id: string;
  /** The value of a finished key, gathered from workers. */
  _fetchValue(key: string): Promise<unknown>;
  /** One Future for `key` is released (explicitly or by the garbage collector). */
  _releaseFuture(future: Future): void;
  cancel(futures: Future | Future[], options?: { force?: boolean }): Promise<void>;
  retry(futures: Future | Future[]): Promise<void>;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

/** Client-side state of one key, shared by all Futures of that key. */
export class FutureState {
  status: FutureStatus = 'pending';
  /** Type name of the result as reported by the worker, when known. */
  type: string | undefined;
  /** Why the future is not finished: RemoteError, CancelledError or FutureLostError. */
  error: Error | undefined;
  wireError: WireError | undefined;
  /** Cached value (gathered on first await). */
  value: Promise<unknown> | undefined;
  /**
   * A small result that came inline with key-in-memory (hasInline says whether there is one).
   * Kept as is rather than as a resolved Promise: a gather of 10 000 such results awaited one
   * Promise per key, one after the other, after the last result had arrived.
   */
  inline: unknown;
  hasInline = false;
  /** The task as submitted (kept for retry()); undefined for scattered data. */
  definition: TaskDefinition | undefined;
  userPriority: number | undefined;
  fifoTimeoutMs: number | undefined;
  /** States of the task's dependencies, kept while it may need a retry (dropped once finished). */
  dependencies: FutureState[] | undefined;
  /** Scatter in progress: releases wait until the scheduler knows the key. */
  scattering: Promise<void> | undefined;
  /**
   * The id of the outgoing batch this state's task was queued in (0: none); while that batch is
   * still queued, the scheduler has not heard of the task, and a cancel needs no rpc. An id, not
   * the batch: a batch holds every task definition of a map.
   */
  queuedIn = 0;
  private deferred: Deferred | undefined;
  private callbacks: Array<() => void> | undefined;

  constructor(readonly key: string) {}

  isDone(): boolean {
    return this.status !== 'pending';
  }

  /** Resolves once the state leaves 'pending' (never rejects). */
  wait(): Promise<void> {
    if (this.status !== 'pending') return Promise.resolve();
    if (this.deferred === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.deferred = { promise, resolve };
    }
    return this.deferred.promise;
  }

  /** Calls `cb` once when the state is (or becomes) done. */
  onDone(cb: () => void): void {
    if (this.status !== 'pending') {
      queueMicrotask(cb);
      return;
    }
    (this.callbacks ??= []).push(cb);
  }

  finish(type?: string): void {
    this.status = 'finished';
    if (type !== undefined) this.type = type;
    this.error = undefined;
    this.wireError = undefined;
    this.notify();
  }

  setError(error: Error, wire?: WireError): void {
    this.status = 'error';
    this.error = error;
    this.wireError = wire;
    this.forgetValue();
    this.notify();
  }

  cancel(reason?: string): void {
    this.status = 'cancelled';
    this.error = new CancelledError(this.key, reason);
    this.forgetValue();
    this.notify();
  }

  lost(reason?: string): void {
    this.status = 'lost';
    this.error = new FutureLostError(this.key, reason);
    this.forgetValue();
    this.notify();
  }

  /** Back to pending (retry, resubmission after cancel). */
  reset(): void {
    this.status = 'pending';
    this.error = undefined;
    this.wireError = undefined;
    this.forgetValue();
  }

  setInline(value: unknown): void {
    this.inline = value;
    this.hasInline = true;
  }

  private forgetValue(): void {
    this.value = undefined;
    this.inline = undefined;
    this.hasInline = false;
  }

  private notify(): void {
    const d = this.deferred;
    this.deferred = undefined;
    d?.resolve();
    const cbs = this.callbacks;
    this.callbacks = undefined;
    if (cbs !== undefined) for (const cb of cbs) runCallback(cb);
  }
}

function runCallback(cb: () => void): void {
  try {
    cb();
  } catch (err) {
    // A user callback must not break the client's message loop.
    queueMicrotask(() => {
      throw err;
    });
  }
}

const FUTURE = Symbol.for('dd.client.future');

export function isFuture(value: unknown): value is Future {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FUTURE] === true;
}

export interface ResultOptions {
  /** Milliseconds to wait for the result (the task, and fetching its value) before rejecting with a TimeoutError. */
  timeout?: number;
}

/**
 * A remote result. `await future` gives its value (gathered from a worker once, then cached);
 * it is PromiseLike, so never resolve a Promise with a bare Future if you mean the Future itself.
 * Futures are made by the client (`submit`, `map`, `scatter`, ...), not by `new`.
 */
export class Future<T = unknown> implements PromiseLike<T> {
  readonly [FUTURE] = true;
  #released = false;

  /** @internal use client.submit / client.scatter / client.futureOf */
  constructor(
    readonly key: string,
    readonly client: FutureOwner,
    /** @internal */ readonly _state: FutureState,
  ) {}

  get status(): FutureStatus {
    return this._state.status;
  }

  /** Type name of the result, when the worker reported it. */
  get type(): string | undefined {
    return this._state.type;
  }

  /** True once the task finished, erred, was cancelled or lost. */
  done(): boolean {
    return this._state.isDone();
  }

  cancelled(): boolean {
    return this._state.status === 'cancelled';
  }

  get released(): boolean {
    return this.#released;
  }

  /** The value; rejects with RemoteError, CancelledError, FutureLostError or TimeoutError. */
  async result(options: ResultOptions = {}): Promise<T> {
    const state = this._state;
    const timeoutMs = options.timeout;
    // One deadline for the whole call: waiting for the task, and fetching its value (which may
    // wait for the task to be computed again if its holder died).
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const bounded = <V>(promise: Promise<V>): Promise<V> =>
      deadline === undefined ? promise : withTimeout(promise, Math.max(0, deadline - Date.now()), this.key, timeoutMs);
    if (state.status === 'pending') await bounded(state.wait());
    for (;;) {
      switch (state.status) {
        case 'finished': {
          if (state.hasInline) return state.inline as T;
          state.value ??= this.client._fetchValue(this.key).catch((err: unknown) => {
            state.value = undefined;
            throw err;
          });
          return (await bounded(state.value)) as T;
        }
        case 'pending':
          // Reset by retry() between the wake-up and now.
          await bounded(state.wait());
          continue;
        default:
          throw state.error ?? new Error(`future ${this.key} is ${state.status}`);
      }
    }
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.result().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: any) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.result().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.result().finally(onfinally);
  }

  /** Waits until done; the error if the task failed (or was cancelled/lost), else undefined. */
  async exception(options: ResultOptions = {}): Promise<Error | undefined> {
    await withTimeout(this._state.wait(), options.timeout, this.key);
    return this._state.status === 'finished' ? undefined : this._state.error;
  }

  /** Waits until done; the remote stack of the failure, if any. */
  async traceback(options: ResultOptions = {}): Promise<string | undefined> {
    await withTimeout(this._state.wait(), options.timeout, this.key);
    return this._state.status === 'error' ? (this._state.wireError?.stack ?? this._state.error?.stack) : undefined;
  }

  /** Calls `fn(this)` once the future is done (at once, asynchronously, if it already is). */
  addDoneCallback(fn: (future: Future<T>) => void): void {
    this._state.onDone(() => fn(this));
  }

  cancel(options?: { force?: boolean }): Promise<void> {
    return this.client.cancel(this as Future, options);
  }

  retry(): Promise<void> {
    return this.client.retry(this as Future);
  }

  /** Drops this handle; when the client holds no other Future for the key, the scheduler may free it. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.client._releaseFuture(this as Future);
  }

  toString(): string {
    return `<Future: ${this.status}, key: ${this.key}>`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  get [Symbol.toStringTag](): string {
    return 'Future';
  }
}

/**
 * Resolves/rejects like `promise`, or rejects with TimeoutError after `ms` (if given); `totalMs`:
 * the timeout to name in the message when `ms` is only what is left of it.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number | undefined, what: string, totalMs = ms): Promise<T> {
  if (ms === undefined || ms === Infinity) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(`timed out after ${totalMs} ms waiting for ${what}`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
