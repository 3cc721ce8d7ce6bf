// Client side of managing a cluster (the scheduler's management and task-stream extensions,
// packages/scheduler/src/extensions): run a function on workers, versions, the task stream,
// shutdown, retire workers, replicate and rebalance data; worker plugins and uploaded files (the
// scheduler's plugins extension keeps them for workers that join later).

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DdError, encodeTaskSpec, type Address, type FunctionRef, type Key, type StartStop, type TaskStreamRecord, type WireError } from '@dd/protocol';
import type { Client } from './client';
import { RemoteError } from './errors';
import { isModuleFunction, toFunctionRef, type Runnable } from './function-ref';
import { isFuture, type Future } from './future';
import { collectFutures } from './structure';

export interface RunOptions {
  /** Worker addresses or names (default: every worker). */
  workers?: string | readonly string[];
  /**
   * A function that throws (or a worker that cannot be reached): 'raise' (default) rejects with
   * the first RemoteError; 'return' puts the RemoteError in that worker's place; 'ignore' leaves
   * the worker out.
   */
  onError?: 'raise' | 'return' | 'ignore';
  /** Bound on each worker's reply, ms (default: none). */
  timeout?: number;
}

type RunReply = { status: 'OK'; result: unknown } | { status: 'error'; exception: WireError };

/** run(options, fn, ...args): a first argument that is neither a function nor ref() is the options. */
export function isRunOptions(value: unknown): value is RunOptions {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isModuleFunction(value);
}

export async function run(client: Client, options: RunOptions, fn: Runnable, args: readonly unknown[]): Promise<Record<Address, unknown>> {
  if (collectFutures(args).length > 0) {
    throw new TypeError('run(fn, ...args): arguments cannot be Futures (run is outside the task system; gather them first)');
  }
  const onError = options.onError ?? 'raise';
  if (onError !== 'raise' && onError !== 'return' && onError !== 'ignore') throw new TypeError(`run: unknown onError ${JSON.stringify(onError)}`);
  const msg: Record<string, unknown> = { spec: encodeTaskSpec({ fn: toFunctionRef(fn), args: [...args] }) };
  if (options.workers !== undefined) msg['workers'] = typeof options.workers === 'string' ? [options.workers] : [...options.workers];
  if (options.timeout !== undefined) msg['timeoutMs'] = options.timeout;
  const replies = await client._rpc<Record<Address, RunReply>>('run', msg);
  const out: Record<Address, unknown> = {};
  for (const [address, reply] of Object.entries(replies)) {
    if (reply.status === 'OK') {
      out[address] = reply.result;
      continue;
    }
    const err = new RemoteError(reply.exception, { address });
    if (onError === 'raise') throw err;
    if (onError === 'return') out[address] = err;
  }
  return out;
}

export interface Versions {
  scheduler: Record<string, string>;
  workers: Record<Address, Record<string, string> | { error: WireError }>;
  client: Record<string, string>;
}

/** getVersions({ check: true }) found components that differ. */
export class VersionMismatchError extends DdError {
  override readonly code: string = 'DD_ERR_VERSION_MISMATCH';
}

const DD_VERSION = (require('../package.json') as { version: string }).version;

export function clientVersions(): Record<string, string> {
  return { dd: DD_VERSION, node: process.versions.node, v8: process.versions.v8, platform: process.platform, arch: process.arch };
}

/** Versions of dd and Node on the scheduler, every worker and this client; `check` rejects on a dd or Node mismatch. */
export async function getVersions(client: Client, options: { check?: boolean } = {}): Promise<Versions> {
  const remote = await client._rpc<Omit<Versions, 'client'>>('get-versions', {});
  const out: Versions = { ...remote, client: clientVersions() };
  if (options.check === true) {
    const problems: string[] = [];
    for (const field of ['dd', 'node'] as const) {
      const seen = new Map<string, string[]>();
      const note = (who: string, v: Record<string, unknown>) => {
        const value = typeof v[field] === 'string' ? (v[field] as string) : '?';
        seen.set(value, [...(seen.get(value) ?? []), who]);
      };
      note('client', out.client);
      note('scheduler', out.scheduler);
      for (const [a, v] of Object.entries(out.workers)) note(a, v as Record<string, unknown>);
      if (seen.size > 1) problems.push(`${field}: ${[...seen].map(([v, who]) => `${v} on ${who.join(', ')}`).join('; ')}`);
    }
    if (problems.length > 0) throw new VersionMismatchError(`version mismatch: ${problems.join(' | ')}`);
  }
  return out;
}

export type { TaskStreamRecord };

export interface TaskStreamOptions {
  /** Only tasks with some activity at or after this time (ms since the epoch, or a Date). */
  start?: number | Date;
  /** Only tasks with some activity at or before this time. */
  stop?: number | Date;
  /** Only the last `count` records. */
  count?: number;
}

/** What each finished or failed task did where and when, oldest first (the scheduler keeps the last 100 000). */
export async function getTaskStream(client: Client, options: TaskStreamOptions = {}): Promise<TaskStreamRecord[]> {
  const args: Record<string, unknown> = {};
  if (options.start !== undefined) args['start'] = +options.start;
  if (options.stop !== undefined) args['stop'] = +options.stop;
  if (options.count !== undefined) args['count'] = options.count;
  return await client._rpc<TaskStreamRecord[]>('get-task-stream', args);
}

/** Asks the scheduler to close every worker and itself, then closes the client. */
export async function shutdown(client: Client): Promise<void> {
  try {
    await client._rpc('shutdown', {});
  } finally {
    await client.close();
  }
}

export interface ManagementOptions {
  /** Bound on moving the data, ms (the scheduler's default: 30 000). */
  timeout?: number;
}

/**
 * Closes workers (addresses or names) without losing data: keys that only they hold are copied
 * to other workers first. Resolves to `{ [address]: name }` of the retired workers.
 */
export async function retireWorkers(client: Client, workers: string | readonly string[], options: ManagementOptions = {}): Promise<Record<Address, string>> {
  const list = typeof workers === 'string' ? [workers] : [...workers];
  if (list.length === 0) return {};
  const args: Record<string, unknown> = { workers: list };
  if (options.timeout !== undefined) args['timeoutMs'] = options.timeout;
  return await client._rpc<Record<Address, string>>('retire-workers', args);
}

export interface ReplicateOptions extends ManagementOptions {
  /** Copies of each key (default: one on every worker in `workers`); fewer than now drops extra copies. */
  n?: number;
  /** Worker addresses or names to place copies on (default: all). */
  workers?: string | readonly string[];
}

/** Copies the futures' data onto `n` workers (default all); waits for the futures first. */
export async function replicate(client: Client, futures: Future | readonly unknown[], options: ReplicateOptions = {}): Promise<void> {
  const keys = await finishedKeys(client, futures, 'replicate');
  if (keys.length === 0) return;
  const args: Record<string, unknown> = { keys };
  if (options.n !== undefined) args['n'] = options.n;
  if (options.workers !== undefined) args['workers'] = typeof options.workers === 'string' ? [options.workers] : [...options.workers];
  if (options.timeout !== undefined) args['timeoutMs'] = options.timeout;
  await client._rpc('replicate', args);
}

export interface RebalanceOptions extends ManagementOptions {
  /** Workers to balance across (default: all). */
  workers?: string | readonly string[];
}

/** Evens out the bytes of the futures' data (default: all data) across workers; waits for the futures first. */
export async function rebalance(client: Client, futures?: Future | readonly unknown[], options: RebalanceOptions = {}): Promise<void> {
  const args: Record<string, unknown> = {};
  if (futures !== undefined) {
    const keys = await finishedKeys(client, futures, 'rebalance');
    if (keys.length === 0) return;
    args['keys'] = keys;
  }
  if (options.workers !== undefined) args['workers'] = typeof options.workers === 'string' ? [options.workers] : [...options.workers];
  if (options.timeout !== undefined) args['timeoutMs'] = options.timeout;
  await client._rpc('rebalance', args);
}

async function finishedKeys(client: Client, futures: Future | readonly unknown[], op: string): Promise<Key[]> {
  const list = isFuture(futures) ? [futures] : collectFutures(futures);
  for (const f of list) {
    if (f.client !== client) throw new TypeError(`${op}: future ${f.key} belongs to another client`);
  }
  // Their data must exist first (an erred future rejects here).
  await Promise.all(list.map((f) => f.result()));
  return [...new Set(list.map((f) => f.key))];
}

/** A worker plugin (see @dd/worker plugins.ts): implement the hooks you need. */
export interface WorkerPlugin {
  /** Default name when registerWorkerPlugin gets none. */
  name?: string;
  setup?(worker: any): unknown;
  teardown?(worker: any): unknown;
  transition?(key: Key, start: string, finish: string, info: { stimulusId: string }): void;
}

type PluginWire =
  | { kind: 'source'; methods: Record<string, FunctionRef>; data: Record<string, unknown> }
  | { kind: 'module'; module: string; export: string };

const HOOKS = ['setup', 'teardown', 'transition'];

/**
 * The wire form of a plugin: an object travels as its data properties plus its methods by
 * source (own and inherited, so class instances work; each method must be self-contained, like
 * a task function); `ref(module, export)` names a class or factory function that makes it.
 */
export function pluginWire(plugin: object): PluginWire {
  if (isModuleFunction(plugin)) return { kind: 'module', module: plugin.module, export: plugin.export };
  if (typeof plugin !== 'object' || plugin === null) {
    throw new TypeError('registerWorkerPlugin(plugin): expected an object with setup/teardown/transition, or ref(module, export)');
  }
  const methods: Record<string, FunctionRef> = {};
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(plugin)) {
    if (typeof v === 'function') methods[k] = toFunctionRef(v as (...a: unknown[]) => unknown);
    else if (v !== undefined) data[k] = v;
  }
  for (let p = Object.getPrototypeOf(plugin) as object | null; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === 'constructor' || k in methods || k in data) continue;
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (typeof d?.value === 'function') methods[k] = toFunctionRef(d.value as (...a: unknown[]) => unknown);
    }
  }
  if (!HOOKS.some((h) => h in methods)) throw new TypeError('registerWorkerPlugin(plugin): the plugin has none of setup, teardown, transition');
  return { kind: 'source', methods, data };
}

/** Per worker: 'OK', or the RemoteError its setup (or the upload) failed with. */
export type PluginResults = Record<Address, 'OK' | RemoteError>;

function results(replies: Record<Address, { status: 'OK' } | { status: 'error'; exception: WireError }>): PluginResults {
  const out: PluginResults = {};
  for (const [a, r] of Object.entries(replies)) out[a] = r.status === 'OK' ? 'OK' : new RemoteError(r.exception, { address: a });
  return out;
}

/**
 * Registers a plugin on every worker now and every worker that joins later; a plugin registered
 * under a name in use replaces the old one (torn down first). A setup that throws is reported in
 * the result and logged by the worker, which goes on working.
 */
export async function registerWorkerPlugin(client: Client, plugin: object, options: { name?: string } = {}): Promise<PluginResults> {
  const wire = pluginWire(plugin);
  const own = (plugin as { name?: unknown }).name;
  const name = options.name ?? (typeof own === 'string' && !isModuleFunction(plugin) ? own : wire.kind === 'module' ? `${wire.module}#${wire.export}` : `plugin-${hashOf(wire)}`);
  return results(await client._rpc('register-worker-plugin', { name, plugin: wire }));
}

export async function unregisterWorkerPlugin(client: Client, name: string): Promise<PluginResults> {
  return results(await client._rpc('unregister-worker-plugin', { name }));
}

/**
 * Sends a file (a JS module, or any file) or a directory (e.g. a package with index.js) to every
 * worker now and every worker that joins later, saved under its base name in the worker's upload
 * directory: tasks use it by bare specifier, `ref('mymod.js', 'fn')` or `require('mymod')`.
 * Rejects with the first worker's error if any worker could not save it.
 */
export async function uploadFile(client: Client, filePath: string): Promise<Address[]> {
  const abs = path.resolve(filePath);
  const filename = path.basename(abs);
  const st = await fs.stat(abs);
  const plugin: Record<string, unknown> = { kind: 'upload', filename };
  if (st.isDirectory()) {
    const files: Record<string, Buffer> = {};
    let total = 0;
    const walk = async (dir: string, rel: string[]): Promise<void> => {
      for (const e of await fs.readdir(dir, { withFileTypes: true })) {
        if (e.name === 'node_modules' || e.name === '.git') continue;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p, [...rel, e.name]);
        else if (e.isFile()) {
          const bytes = await fs.readFile(p);
          total += bytes.length;
          if (total > 256 * 1024 * 1024) throw new RangeError(`uploadFile: ${filePath} holds more than 256 MiB`);
          files[[...rel, e.name].join('/')] = bytes;
        }
      }
    };
    await walk(abs, []);
    plugin['files'] = files;
  } else {
    plugin['data'] = await fs.readFile(abs);
  }
  const out = results(await client._rpc('register-worker-plugin', { name: `upload:${filename}`, plugin }));
  for (const r of Object.values(out)) if (r !== 'OK') throw r;
  return Object.keys(out);
}

function hashOf(value: unknown): string {
  return createHash('md5').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}
