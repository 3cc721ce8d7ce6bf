// Lazy task graphs: `delayed(fn)(...args)` records a call instead of running it.
//
//   const t = delayed(add)(delayed(inc)(1), 10);   // nothing runs yet
//   const f = client.compute(t);                   // Future, returned at once
//   await t.compute();                             // with the default client
//   const p = client.persist(t);                   // a Delayed backed by a running Future
//
// A Delayed knows its key, its own task and the Delayed values it uses, so its graph is the
// union of its ancestors'. Arguments may hold Delayed values and Futures at any depth of arrays
// and plain objects. Keys are deterministic: `<fn name>-<token of fn and args>` (the same key
// `submit` would give), with Delayed arguments standing for their keys, so equal calls share
// a key and are computed once; `{ pure: false }` gives a fresh key per call.

import type { Key } from '@dd/protocol';
import { keyRef } from '@dd/protocol';
import type { Client } from './client';
import { defaultClient } from './default-client';
import { functionName, isModuleFunction, toFunctionRef, type ModuleFunction, type Runnable } from './function-ref';
import { isFuture, type Future } from './future';
import { identity, submitTasks, type GetOptions, type GraphOptions, type GraphTask } from './graph';
import { InvalidGraphError } from './graph-errors';
import { randomToken, taskKey, typeName } from './keys';
import { tokenize } from '@dd/protocol';

const DELAYED = Symbol.for('dd.client.delayed');
const MAX_DEPTH = 256;

/** A value computed from T-valued Delayeds and Futures: what `compute` gives. */
export type Computed<T> =
  T extends Delayed<infer V>
    ? V
    : T extends Future<infer V>
      ? V
      : T extends readonly unknown[]
        ? { [K in keyof T]: Computed<T[K]> }
        : T extends Record<string, unknown>
          ? { [K in keyof T]: Computed<T[K]> }
          : T;

/** Where a T is expected, a Delayed<T> or Future<T> will do (also nested). */
export type DelayedArg<T> =
  | T
  | Delayed<T>
  | Future<T>
  | (T extends readonly (infer E)[] ? DelayedArg<E>[] : never)
  | (T extends Record<string, unknown> ? { [K in keyof T]: DelayedArg<T[K]> } : never);
export type DelayedArgs<A extends readonly unknown[]> = { [K in keyof A]: DelayedArg<A[K]> };

type AnyFn = (...args: any[]) => unknown;

export interface DelayedOptions {
  /** Same function + arguments = same key (default true); false: a fresh key per call. */
  pure?: boolean;
  /** Key prefix instead of the function's (or value type's) name. */
  name?: string;
}

/** A lazy value: a task (and its graph) that runs on `compute`/`persist`. Not thenable. */
export class Delayed<T = unknown> {
  readonly [DELAYED] = true;
  /** @internal the task computing this value; undefined when backed by a Future. */
  readonly _task: GraphTask | undefined;
  /** @internal Delayed values the task uses. */
  readonly _deps: readonly Delayed[];
  /** @internal Futures the task uses, or the Future backing this value. */
  readonly _futures: readonly Future[];
  /** Phantom: the type of the computed value. */
  declare readonly __type?: T;

  /** @internal */
  constructor(
    readonly key: Key,
    task: GraphTask | undefined,
    deps: readonly Delayed[],
    futures: readonly Future[],
  ) {
    this._task = task;
    this._deps = deps;
    this._futures = futures;
  }

  /** The Future this value is backed by (after persist), if any. */
  get future(): Future<T> | undefined {
    return this._task === undefined ? (this._futures[0] as Future<T> | undefined) : undefined;
  }

  /** Computes the value on the default client (the most recently connected one). */
  async compute(options: GetOptions & { client?: Client } = {}): Promise<T> {
    const client = options.client ?? defaultClient();
    const future = computeDelayed(client, this, options);
    try {
      return (await future.result(options.timeout === undefined ? {} : { timeout: options.timeout })) as T;
    } finally {
      future.release();
    }
  }

  /** Starts computing on the default client; a Delayed backed by the running Future. */
  persist(options: GraphOptions & { client?: Client } = {}): Delayed<T> {
    return persistDelayed(options.client ?? defaultClient(), this, options);
  }

  /** Every task of this value's graph (dependencies included), by key. */
  graph(): Map<Key, GraphTask> {
    return collectGraph([this]).tasks;
  }

  toString(): string {
    return `Delayed(${this.key})`;
  }

  get [Symbol.toStringTag](): string {
    return 'Delayed';
  }
}

export function isDelayed(value: unknown): value is Delayed {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DELAYED] === true;
}

/**
 * `delayed(fn)` wraps a function: calling the wrapper records the call and returns a Delayed.
 * `delayed(value)` wraps a value (Delayed values and Futures inside it are resolved when it is
 * computed); `delayed(future)` is a Delayed backed by that Future; a Delayed is returned as is.
 */
export function delayed<F extends AnyFn>(fn: F | ModuleFunction<F>, options?: DelayedOptions): (...args: DelayedArgs<Parameters<F>>) => Delayed<Awaited<ReturnType<F>>>;
export function delayed<T>(value: T, options?: DelayedOptions): Delayed<Computed<T>>;
export function delayed(value: unknown, options: DelayedOptions = {}): unknown {
  if (isDelayed(value)) return value;
  if (typeof value === 'function' || isModuleFunction(value)) {
    const fn = value as Runnable;
    toFunctionRef(fn); // fails now (not at compute) for functions that cannot travel
    const wrapper = (...args: unknown[]): Delayed => makeCall(fn, args, options);
    Object.defineProperty(wrapper, 'name', { value: `delayed(${functionName(fn)})` });
    return wrapper;
  }
  if (isFuture(value)) return new Delayed(value.key, undefined, [], [value]);
  const deps: Delayed[] = [];
  const futures: Future[] = [];
  const wire = lowerArgs(value, deps, futures, 0);
  const name = options.name ?? typeName(value);
  const key = options.pure === false ? `${name}-${randomToken()}` : `${name}-${tokenize(wire)}`;
  return new Delayed(key, { key, fn: identity, args: [wire], dependencies: dependencyKeys(deps, futures) }, deps, futures);
}

function makeCall(fn: Runnable, args: unknown[], options: DelayedOptions): Delayed {
  const deps: Delayed[] = [];
  const futures: Future[] = [];
  const wireArgs = args.map((a) => lowerArgs(a, deps, futures, 0));
  let key: Key;
  if (options.pure === false) key = `${options.name ?? functionName(fn)}-${randomToken()}`;
  else key = taskKey(fn, wireArgs, options.name);
  return new Delayed(key, { key, fn, args: wireArgs, dependencies: dependencyKeys(deps, futures) }, deps, futures);
}

function dependencyKeys(deps: readonly Delayed[], futures: readonly Future[]): Key[] {
  const keys = new Set<Key>();
  for (const d of deps) keys.add(d.key);
  for (const f of futures) keys.add(f.key);
  return [...keys];
}

/** `value` with Delayed values and Futures replaced by key references (copy on write). */
function lowerArgs(value: unknown, deps: Delayed[], futures: Future[], depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DEPTH) throw new InvalidGraphError(`delayed arguments are nested more than ${MAX_DEPTH} levels deep (or circular)`);
  if (isDelayed(value)) {
    if (!deps.includes(value)) deps.push(value);
    return keyRef(value.key);
  }
  if (isFuture(value)) {
    if (!futures.includes(value)) futures.push(value);
    return keyRef(value.key);
  }
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const s = lowerArgs(v, deps, futures, depth + 1);
      if (s !== v) (out ??= value.slice())[i] = s;
    }
    return out ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k];
    const s = lowerArgs(v, deps, futures, depth + 1);
    if (s !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = s;
  }
  return out ?? value;
}

/** The tasks of the Delayed values' graphs (each key once) and the Futures they use. */
export function collectGraph(roots: readonly Delayed[]): { tasks: Map<Key, GraphTask>; futures: Future[] } {
  const tasks = new Map<Key, GraphTask>();
  const futures = new Set<Future>();
  const seen = new Set<Delayed>();
  const stack = [...roots];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    for (const f of d._futures) futures.add(f);
    if (d._task !== undefined && !tasks.has(d.key)) tasks.set(d.key, d._task);
    for (const dep of d._deps) if (!seen.has(dep)) stack.push(dep);
  }
  return { tasks, futures: [...futures] };
}

function asDelayedList(value: unknown, op: string): { list: Delayed[]; many: boolean } {
  const many = Array.isArray(value);
  const list = (many ? value : [value]) as unknown[];
  list.forEach((d, i) => {
    if (!isDelayed(d)) {
      throw new TypeError(`${op}: expected a Delayed or an array of them, got ${many ? `${typeName(d)} at index ${i}` : typeName(d)}; wrap values with delayed()`);
    }
  });
  return { list: list as Delayed[], many };
}

/** client.compute: Futures for the Delayed values (one, or an array for an array), at once. */
export function computeDelayed(client: Client, value: Delayed, options?: GraphOptions): Future;
export function computeDelayed(client: Client, value: readonly Delayed[], options?: GraphOptions): Future[];
export function computeDelayed(client: Client, value: Delayed | readonly Delayed[], options: GraphOptions = {}): Future | Future[] {
  const { list, many } = asDelayedList(value, 'compute');
  const { tasks, futures } = collectGraph(list);
  const out = submitTasks(client, tasks, futures, list.map((d) => d.key), options);
  return many ? out : out[0]!;
}

/** client.persist: the same values, now backed by running Futures. */
export function persistDelayed<T>(client: Client, value: Delayed<T>, options?: GraphOptions): Delayed<T>;
export function persistDelayed(client: Client, value: readonly Delayed[], options?: GraphOptions): Delayed[];
export function persistDelayed(client: Client, value: Delayed | readonly Delayed[], options: GraphOptions = {}): Delayed | Delayed[] {
  const { many } = asDelayedList(value, 'persist');
  const fs = computeDelayed(client, (many ? value : [value]) as Delayed[], options);
  const out = fs.map((f) => new Delayed(f.key, undefined, [], [f]));
  return many ? out : out[0]!;
}
