// Per-call options for submit/map/scatter, and their compiled form.

import { describeValue } from './describe';

export interface TaskOptions {
  /** The key (submit) or keys / key prefix (map). Default: derived from function and arguments. */
  key?: string | string[];
  /** Same function + arguments = same key, computed once (default true). false: a fresh key per call. */
  pure?: boolean;
  /** Worker addresses, hostnames or names the task may run on (hard unless allowOtherWorkers). */
  workers?: string | string[];
  /** Treat `workers` as a preference: run elsewhere when none of them can. */
  allowOtherWorkers?: boolean;
  /** Abstract resources the task holds while it runs, e.g. { GPU: 1 }. */
  resources?: Record<string, number>;
  /** Higher runs first (default 0). */
  priority?: number;
  /** Times to rerun a failing task before reporting the error. */
  retries?: number;
  /** Submissions closer together than this (ms) share a generation for ordering. */
  fifoTimeout?: number;
  /** Not supported yet (actors are a later issue). */
  actor?: boolean;
  /** Free-form annotations carried with the task. */
  annotations?: Record<string, unknown>;
}

export interface ScatterOptions {
  /** Workers (addresses, hostnames or names) to place the data on. */
  workers?: string | string[];
  /** Place every value on every (chosen) worker. */
  broadcast?: boolean;
  /** Key by content (default true); false: random keys. */
  hash?: boolean;
  /** Explicit key (single value) or keys (array). */
  key?: string | string[];
  /** Milliseconds to wait for a worker to exist, then fail the futures. Default: wait as long as it takes. */
  timeout?: number;
}

export type ClientOptions = TaskOptions & Pick<ScatterOptions, 'broadcast' | 'hash'>;

export function toList(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? [value] : [...value];
}

export function mergeOptions(base: ClientOptions, extra: ClientOptions): ClientOptions {
  const out: ClientOptions = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * Rejects option values the scheduler would refuse, when they are given rather than when the
 * task reaches the scheduler: a refused update-graph only cancels its futures, with the reason
 * far from the call that caused it.
 */
export function checkTaskOptions(options: TaskOptions, where: string): void {
  const fail = (name: string, expected: string, value: unknown): never => {
    throw new TypeError(`${where}: option ${name} must be ${expected}, got ${describeValue(value)}`);
  };
  const { priority, retries, fifoTimeout, resources, workers, annotations } = options;
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority))) fail('priority', 'a finite number', priority);
  if (retries !== undefined && (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0)) fail('retries', 'a non-negative integer', retries);
  if (fifoTimeout !== undefined && (typeof fifoTimeout !== 'number' || !Number.isFinite(fifoTimeout) || fifoTimeout < 0)) {
    fail('fifoTimeout', 'a finite number of milliseconds >= 0', fifoTimeout);
  }
  if (resources !== undefined) {
    if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) fail('resources', 'an object like { GPU: 1 }', resources);
    for (const [name, amount] of Object.entries(resources)) {
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) fail(`resources.${name}`, 'a finite number >= 0', amount);
    }
  }
  if (workers !== undefined && typeof workers !== 'string' && !(Array.isArray(workers) && workers.every((w) => typeof w === 'string'))) {
    fail('workers', 'a string or an array of strings', workers);
  }
  if (annotations !== undefined && (typeof annotations !== 'object' || annotations === null || Array.isArray(annotations))) {
    fail('annotations', 'an object', annotations);
  }
}
