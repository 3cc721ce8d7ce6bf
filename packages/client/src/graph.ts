// Dask-style task graphs (client.get) and their translation into TaskDefinitions.
//
// A graph maps keys to values:
//   - an array whose first element is a function (or a ref()) is a task: `[fn, ...args]`;
//   - a string that names another key of the graph stands for that key's value; so does an
//     array of strings and numbers whose canonical form (`wireKey`) names one (`['x', 0]`);
//   - arrays and plain objects are walked (at any depth) for those, and for Futures;
//   - everything else is data.
// Keys are strings or arrays of strings and numbers (Map keys), sent as `wireKey(key)`.
//
// Design choices:
//   - A task nested in an argument (`[sum, [[inc, 1], 'x']]`) becomes its own task, keyed
//     `<fn name>-<token of (parent key, argument path)>`: the worker runs `{fn, args}` specs
//     with KeyRefs only, and a separate task keeps the worker simple and lets the scheduler
//     place it. The cost is one more task (and possibly a transfer) per nested call.
//   - An entry that is not a task (`{ a: 1, b: ['a', 'a'] }`) becomes an `identity` task over
//     its (resolved) value, so it can be asked for and depended on like any other key.
//   - The whole graph is checked before anything is sent: keys, tasks, functions, cycles.
//     Only what the asked keys need is sent; the client holds Futures for those keys only, so
//     the scheduler releases every intermediate result once its dependents are done.
//   - Tasks are sent in the order of `orderGraph` (order.ts): their position in the
//     update-graph is their graph priority.

import { encodeTaskSpec, keyRef, tokenize, type Key, type TaskDefinition } from '@dd/protocol';
import type { Client } from './client';
import { functionName, isModuleFunction, toFunctionRef, type Runnable } from './function-ref';
import { isFuture, type Future } from './future';
import { InvalidGraphError } from './graph-errors';
import { orderGraph } from './order';
import { checkTaskOptions, toList, type TaskOptions } from './options';
import { isPlainObject, mapChildren } from './structure';
import { typeOfValue } from './describe';

/** A graph key: a string, or a tuple of strings and numbers such as `['x', 0]`. */
export type GraphKey = string | readonly (string | number)[];
/** A dask-style graph: a plain object (string keys) or a Map (string or tuple keys). */
export type Graph = { readonly [key: string]: unknown } | ReadonlyMap<GraphKey, unknown>;
/** One key or a (nested) list of keys; results keep this shape. */
export type KeysSpec = GraphKey | readonly KeysSpec[];

/** Options of client.get / compute / persist. */
export type GraphOptions = Pick<TaskOptions, 'workers' | 'allowOtherWorkers' | 'resources' | 'priority' | 'retries' | 'fifoTimeout' | 'annotations'>;

export interface GetOptions extends GraphOptions {
  /** Milliseconds to wait for the results. */
  timeout?: number;
}

/** Submissions of whole graphs closer together than this share a generation (the reference's 60 s). */
export const GRAPH_FIFO_TIMEOUT_MS = 60_000;

/** One task, ready to encode: `fn(...args)` with KeyRefs where dependencies' values go. */
export interface GraphTask {
  key: Key;
  fn: Runnable;
  args: unknown[];
  /** Keys of other graph tasks and of Futures, each once. */
  dependencies: Key[];
}

/** What an entry that is not a task computes: its own (resolved) value. */
export function identity<T>(x: T): T {
  return x;
}

const MAX_DEPTH = 256;

export function isTaskExpression(value: unknown): value is [Runnable, ...unknown[]] {
  if (!Array.isArray(value) || value.length === 0) return false;
  const head: unknown = value[0];
  return typeof head === 'function' || isModuleFunction(head);
}

/** The wire key of a tuple-like array (first element a string, then strings/numbers), else undefined. */
function tupleKey(value: readonly unknown[]): Key | undefined {
  if (value.length === 0 || typeof value[0] !== 'string') return undefined;
  for (let i = 1; i < value.length; i++) {
    const t = typeof value[i];
    if (t !== 'string' && t !== 'number') return undefined;
  }
  return JSON.stringify(value);
}

/** The graph's entries with wire keys; duplicates (`['x', 0]` and `'["x",0]'`) are refused. */
export function graphEntries(graph: Graph): Map<Key, unknown> {
  const out = new Map<Key, unknown>();
  if (graph instanceof Map) {
    for (const [k, v] of graph as ReadonlyMap<unknown, unknown>) {
      let key: Key | undefined;
      if (typeof k === 'string') key = k;
      else if (Array.isArray(k)) key = tupleKey(k);
      if (key === undefined) {
        throw new InvalidGraphError(
          `graph keys must be strings or arrays of strings and numbers starting with a string, got ${Array.isArray(k) ? JSON.stringify(k) : typeOfValue(k)}`,
        );
      }
      if (out.has(key)) throw new InvalidGraphError(`graph key ${key} appears twice`, key);
      out.set(key, v);
    }
    return out;
  }
  if (typeof graph !== 'object' || graph === null || Array.isArray(graph) || !isPlainObject(graph)) {
    throw new InvalidGraphError(`a graph is a plain object or a Map of key -> task, got ${Array.isArray(graph) ? 'an array' : typeOfValue(graph)}`);
  }
  for (const k of Object.keys(graph)) out.set(k, (graph as Record<string, unknown>)[k]);
  return out;
}

/** A key or a nested list of keys, resolved against the graph; `leaves` lists the keys in order. */
export type KeyTree = { key: Key } | KeyTree[];

export function resolveKeys(spec: KeysSpec, has: (key: Key) => boolean, depth = 0): KeyTree {
  if (typeof spec === 'string') {
    if (!has(spec)) throw new InvalidGraphError(`key ${spec} is not in the graph`, spec);
    return { key: spec };
  }
  if (!Array.isArray(spec)) throw new InvalidGraphError(`keys must be a key or a list of keys, got ${typeOfValue(spec)}`);
  if (depth > MAX_DEPTH) throw new InvalidGraphError('keys are nested too deeply (or circular)');
  const tuple = tupleKey(spec);
  if (tuple !== undefined) {
    if (has(tuple)) return { key: tuple };
    // Not a key: a list of keys if it holds strings only (['a', 'b']), else a missing tuple key.
    if (!spec.every((k) => typeof k === 'string')) throw new InvalidGraphError(`key ${tuple} is not in the graph`, tuple);
  }
  return spec.map((k: KeysSpec) => resolveKeys(k, has, depth + 1));
}

export function treeKeys(tree: KeyTree, out: Key[] = []): Key[] {
  if (Array.isArray(tree)) for (const t of tree) treeKeys(t, out);
  else out.push(tree.key);
  return out;
}

export function mapTree<T>(tree: KeyTree, f: (key: Key) => T): unknown {
  return Array.isArray(tree) ? tree.map((t) => mapTree(t, f)) : f(tree.key);
}

/**
 * Lowers every entry of a graph into GraphTasks (nested tasks become tasks of their own).
 * Futures found anywhere are collected in `futures`.
 */
export function lowerGraph(entries: ReadonlyMap<Key, unknown>): { tasks: Map<Key, GraphTask>; futures: Future[] } {
  const tasks = new Map<Key, GraphTask>();
  const futures: Future[] = [];
  const seenFutures = new Set<Future>();

  // `path` is the argument path of `value` in its task, a stack shared by the walk (no
  // allocation per argument); `deps` collects dependency keys (deduplicated at the end).
  const lowerArg = (value: unknown, owner: Key, path: (string | number)[], deps: Key[], depth: number): unknown => {
    if (typeof value === 'string') {
      if (entries.has(value)) {
        deps.push(value);
        return keyRef(value);
      }
      return value;
    }
    if (typeof value === 'function') {
      throw new InvalidGraphError(
        `graph key ${owner}: a function stands in an argument (${path.join('.') || 'value'}) instead of first in a task; ` +
          `functions cannot travel as data: write [fn, ...args] to call it`,
        owner,
      );
    }
    if (typeof value !== 'object' || value === null) return value;
    if (depth > MAX_DEPTH) throw new InvalidGraphError(`graph key ${owner}: a value is nested more than ${MAX_DEPTH} levels deep (or circular)`, owner);
    if (isFuture(value)) {
      if (!seenFutures.has(value)) {
        seenFutures.add(value);
        futures.push(value);
      }
      deps.push(value.key);
      return keyRef(value.key);
    }
    if (isModuleFunction(value)) {
      throw new InvalidGraphError(`graph key ${owner}: ref() stands in an argument (${path.join('.')}) instead of first in a task`, owner);
    }
    if (Array.isArray(value)) {
      if (isTaskExpression(value)) {
        const sub = `${functionName(value[0])}-${tokenize(owner, path)}`;
        if (entries.has(sub)) throw new InvalidGraphError(`graph key ${sub} collides with the key generated for a nested task of ${owner}`, sub);
        lowerEntry(sub, value, depth + 1);
        deps.push(sub);
        return keyRef(sub);
      }
      const tk = tupleKey(value);
      if (tk !== undefined && entries.has(tk)) {
        deps.push(tk);
        return keyRef(tk);
      }
    }
    return mapChildren(value, (v, at) => {
      path.push(at);
      const s = lowerArg(v, owner, path, deps, depth + 1);
      path.pop();
      return s;
    });
  };

  const lowerEntry = (key: Key, value: unknown, depth: number): void => {
    const deps: Key[] = [];
    const path: (string | number)[] = [];
    let fn: Runnable;
    let args: unknown[];
    if (isTaskExpression(value)) {
      fn = value[0];
      try {
        toFunctionRef(fn);
      } catch (err) {
        throw new InvalidGraphError(`graph key ${key}: ${(err as Error).message}`, key);
      }
      args = new Array<unknown>(value.length - 1);
      for (let i = 1; i < value.length; i++) {
        path.push(i - 1);
        args[i - 1] = lowerArg(value[i], key, path, deps, depth + 1);
        path.pop();
      }
    } else if (typeof value === 'function' || isModuleFunction(value)) {
      throw new InvalidGraphError(`graph key ${key} is a function, not a task: write [fn, ...args] to call it`, key);
    } else {
      fn = identity;
      args = [lowerArg(value, key, path, deps, depth + 1)];
    }
    // A task naming its own key keeps that dependency: orderGraph reports the cycle.
    tasks.set(key, { key, fn, args, dependencies: deps.length > 1 ? [...new Set(deps)] : deps });
  };

  for (const [key, value] of entries) lowerEntry(key, value, 0);
  return { tasks, futures };
}

/**
 * TaskDefinitions for what `wanted` needs, in graph order (order.ts), with the options'
 * restrictions on every task. Throws GraphCycleError / InvalidGraphError naming the key.
 */
export function graphDefinitions(tasks: ReadonlyMap<Key, GraphTask>, wanted: readonly Key[], options: GraphOptions = {}): TaskDefinition[] {
  checkTaskOptions(options, 'graph options');
  const deps = new Map<Key, Key[]>();
  for (const t of tasks.values()) deps.set(t.key, t.dependencies);
  const rank = orderGraph(deps);

  // Cull: only what the wanted keys need, placed by rank (ranks are 0..n-1: no sort needed).
  const byRank: Array<GraphTask | undefined> = new Array(tasks.size);
  const seen = new Set<Key>();
  const stack = [...wanted];
  while (stack.length > 0) {
    const k = stack.pop()!;
    if (seen.has(k)) continue;
    seen.add(k);
    const t = tasks.get(k);
    if (t === undefined) continue; // a Future's key
    byRank[rank.get(k)!] = t;
    for (const d of t.dependencies) if (!seen.has(d)) stack.push(d);
  }
  const needed: GraphTask[] = [];
  for (let r = 0; r < byRank.length; r++) if (byRank[r] !== undefined) needed.push(byRank[r]!);

  const workers = toList(options.workers);
  const out: TaskDefinition[] = new Array(needed.length);
  for (let i = 0; i < needed.length; i++) {
    const t = needed[i]!;
    let spec: TaskDefinition['spec'];
    try {
      spec = encodeTaskSpec({ fn: toFunctionRef(t.fn), args: t.args });
    } catch (err) {
      throw new InvalidGraphError(`graph key ${t.key}: cannot encode the task: ${(err as Error).message}`, t.key);
    }
    const def: TaskDefinition = { key: t.key, spec, dependencies: t.dependencies, order: i };
    if (workers !== undefined) def.workers = workers;
    if (options.allowOtherWorkers !== undefined) def.allowOtherWorkers = options.allowOtherWorkers;
    if (options.resources !== undefined) def.resources = options.resources;
    if (options.retries !== undefined) def.retries = options.retries;
    if (options.annotations !== undefined) def.annotations = options.annotations;
    out[i] = def;
  }
  return out;
}

/** Submits what `wanted` needs of `tasks`; one Future per entry of `wanted` (duplicates share a key). */
export function submitTasks(client: Client, tasks: ReadonlyMap<Key, GraphTask>, futures: readonly Future[], wanted: readonly Key[], options: GraphOptions): Future[] {
  const defs = graphDefinitions(tasks, [...new Set(wanted)], options);
  return client._submitGraph(defs, wanted, futures, {
    ...options,
    fifoTimeout: options.fifoTimeout ?? GRAPH_FIFO_TIMEOUT_MS,
  });
}

/** client.get: computes `keys` of `graph` and resolves to their values in the shape of `keys`. */
export async function getGraph(client: Client, graph: Graph, keys: KeysSpec, options: GetOptions = {}): Promise<unknown> {
  const entries = graphEntries(graph);
  const tree = resolveKeys(keys, (k) => entries.has(k));
  const { tasks, futures } = lowerGraph(entries);
  const wanted = treeKeys(tree);
  const fs = submitTasks(client, tasks, futures, wanted, options);
  try {
    let i = 0;
    const shaped = mapTree(tree, () => fs[i++]!); // leaves in the order treeKeys listed them
    return await client.gather(shaped, options.timeout === undefined ? {} : { timeout: options.timeout });
  } finally {
    for (const f of fs) f.release();
  }
}
