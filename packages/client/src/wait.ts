// wait, asCompleted, fireAndForget: coordinating many Futures.

import { TimeoutError } from './errors';
import { describeValue } from './describe';
import { isFuture, type Future } from './future';

export type ReturnWhen = 'ALL_COMPLETED' | 'FIRST_COMPLETED' | 'FIRST_EXCEPTION';

export interface WaitOptions {
  /** Milliseconds; ALL_COMPLETED rejects with TimeoutError when it runs out, FIRST_* too. */
  timeout?: number;
  returnWhen?: ReturnWhen;
}

export interface WaitResult<T = unknown> {
  done: Set<Future<T>>;
  notDone: Set<Future<T>>;
}

/**
 * Waits until all futures are done (ALL_COMPLETED), any one is (FIRST_COMPLETED), or any one
 * failed (FIRST_EXCEPTION, else all done). Never rejects because a task failed.
 */
export function wait<T>(futures: Iterable<Future<T>> | Future<T>, options: WaitOptions = {}): Promise<WaitResult<T>> {
  const list = isFuture(futures) ? [futures as Future<T>] : [...futures];
  const notFuture = list.findIndex((f) => !isFuture(f));
  if (notFuture >= 0) return Promise.reject(new TypeError(`wait: expected Futures, got ${describeValue(list[notFuture])} at index ${notFuture}`));
  const returnWhen = options.returnWhen ?? 'ALL_COMPLETED';
  if (returnWhen !== 'ALL_COMPLETED' && returnWhen !== 'FIRST_COMPLETED' && returnWhen !== 'FIRST_EXCEPTION') {
    return Promise.reject(new TypeError(`wait: unknown returnWhen ${String(returnWhen)}`));
  }
  const split = (): WaitResult<T> => {
    const done = new Set<Future<T>>();
    const notDone = new Set<Future<T>>();
    for (const f of list) (f.done() ? done : notDone).add(f);
    return { done, notDone };
  };
  const satisfied = (): boolean => {
    if (list.every((f) => f.done())) return true;
    if (returnWhen === 'FIRST_COMPLETED') return list.some((f) => f.done());
    if (returnWhen === 'FIRST_EXCEPTION') return list.some((f) => f.done() && f.status !== 'finished');
    return false;
  };
  if (satisfied()) return Promise.resolve(split());
  return new Promise((resolve, reject) => {
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      if (finished || !satisfied()) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      resolve(split());
    };
    if (options.timeout !== undefined && options.timeout !== Infinity) {
      timer = setTimeout(() => {
        if (finished) return;
        finished = true;
        const { notDone } = split();
        reject(new TimeoutError(`wait: ${notDone.size} of ${list.length} futures not done after ${options.timeout} ms`));
      }, options.timeout);
    }
    for (const f of list) if (!f.done()) f._state.onDone(check);
  });
}

export interface AsCompletedOptions {
  /** Yield `[future, value]` pairs; a failed task rejects the iteration unless raiseErrors is false. */
  withResults?: boolean;
  /** With withResults: false yields `[future, error]` for failed tasks instead of throwing (default true). */
  raiseErrors?: boolean;
}

/**
 * Futures in the order they complete. `add(f)` adds more while iterating; `batches()` yields
 * arrays of everything completed since the last batch; `count()` is how many are not yet yielded.
 */
export class AsCompleted<T = unknown, Y = Future<T>> implements AsyncIterable<Y> {
  readonly #withResults: boolean;
  readonly #raiseErrors: boolean;
  #pending = 0;
  readonly #queue: Future<T>[] = [];
  #wake: (() => void) | undefined;

  constructor(futures: Iterable<Future<T>> = [], options: AsCompletedOptions = {}) {
    this.#withResults = options.withResults ?? false;
    this.#raiseErrors = options.raiseErrors ?? true;
    for (const f of futures) this.add(f);
  }

  /** Adds a future to watch (also during iteration). */
  add(future: Future<T>): void {
    if (!isFuture(future)) throw new TypeError(`asCompleted: expected Futures, got ${describeValue(future)}`);
    this.#pending++;
    future._state.onDone(() => {
      this.#pending--;
      this.#queue.push(future);
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    });
  }

  update(futures: Iterable<Future<T>>): void {
    for (const f of futures) this.add(f);
  }

  /** Futures added and not yet yielded. */
  count(): number {
    return this.#pending + this.#queue.length;
  }

  isEmpty(): boolean {
    return this.count() === 0;
  }

  /** Resolves once something is queued; false when nothing is left to wait for. */
  async #next(): Promise<boolean> {
    while (this.#queue.length === 0) {
      if (this.#pending === 0) return false;
      await new Promise<void>((r) => (this.#wake = r));
    }
    return true;
  }

  /** What to yield for a completed future: the Future itself, or a [future, value] pair. */
  async #pair(f: Future<T>): Promise<Y> {
    try {
      return [f, await f.result()] as unknown as Y;
    } catch (err) {
      if (this.#raiseErrors) throw err;
      return [f, err] as unknown as Y;
    }
  }

  // Written out rather than as an async generator: a generator's `yield` awaits a thenable, and
  // a Future is one, so it would yield the Future's value (and throw for a failed task) instead
  // of the Future, which is what the reference's as_completed yields.
  [Symbol.asyncIterator](): AsyncIterator<Y> {
    return {
      next: async (): Promise<IteratorResult<Y>> => {
        if (!(await this.#next())) return { done: true, value: undefined };
        const f = this.#queue.shift()!;
        return { done: false, value: this.#withResults ? await this.#pair(f) : (f as unknown as Y) };
      },
    };
  }

  /** Arrays of everything completed since the previous batch. */
  async *batches(): AsyncGenerator<Y[]> {
    while (await this.#next()) {
      const fs = this.#queue.splice(0, this.#queue.length);
      const out: Y[] = [];
      for (const f of fs) out.push(this.#withResults ? await this.#pair(f) : (f as unknown as Y));
      yield out;
    }
  }
}

export function asCompleted<T>(futures: Iterable<Future<T>>, options: AsCompletedOptions & { withResults: true }): AsCompleted<T, [Future<T>, T]>;
export function asCompleted<T>(futures?: Iterable<Future<T>>, options?: AsCompletedOptions): AsCompleted<T, Future<T>>;
export function asCompleted<T>(futures: Iterable<Future<T>> = [], options: AsCompletedOptions = {}): AsCompleted<T, unknown> {
  return new AsCompleted<T, unknown>(futures, options);
}

/**
 * Lets the task run to completion even if every handle to it is dropped (or the client
 * closes): the scheduler's `fire-and-forget` client wants it until it is done. The client also
 * keeps a handle of its own until then.
 */
export function fireAndForget(futures: Future | Iterable<Future>): void {
  const list = isFuture(futures) ? [futures] : [...futures];
  for (const f of list) {
    const owner = f.client as unknown as { _fireAndForget?: (f: Future) => void };
    owner._fireAndForget?.(f);
  }
}
