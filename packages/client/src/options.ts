// Per-call options for submit/map/scatter, and their compiled form.

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
