// Worker options: what users pass, and the compiled form with every default applied (once).

import * as os from 'node:os';
import { parseBytes, parseTimedelta } from '@dd/protocol';

export interface WorkerOptions {
  /** Scheduler address, e.g. `tcp://127.0.0.1:8786` or `inproc://...`. */
  scheduler: string;
  /** Address to listen on for peers and clients. Default `tcp://127.0.0.1:0` (a free port). */
  listen?: string;
  /** Tasks run at once. Default: the number of CPUs. */
  nthreads?: number;
  /** Name the scheduler knows the worker by. Default: its address. */
  name?: string;
  /** Abstract resources offered, e.g. `{GPU: 2}`. */
  resources?: Record<string, number>;
  /** Bytes (or '4GB', or 'auto': total memory × min(1, nthreads / CPUs)). Reported to the scheduler. */
  memoryLimit?: number | string;
  /** Scratch directory (spilled data, uploaded files later). Default: a fresh temp directory, removed on close. */
  localDirectory?: string;
  /** Directory that module references and `require` in task functions resolve against. Default: process.cwd(). */
  cwd?: string;
  /** 'threads' (default): a worker_threads pool; 'inline': on the main event loop. */
  executor?: 'threads' | 'inline';
  /**
   * Thread pool: tasks each thread holds at once, the running one and the next ones queued in
   * the thread (default 4). Above 1 a thread goes straight to its next task instead of waiting
   * a main-thread round trip, which costs more than a tiny task; 1 is strict one-task-per-thread.
   */
  executorQueueDepth?: number;
  /** Default 1000 ms (the scheduler's register reply may change it). */
  heartbeatIntervalMs?: number;
  /** Close if the scheduler cannot be reached for this long (ms or '60s'). Default 60 s; 0 = never. */
  deathTimeoutMs?: number | string;
  /** Check WorkerState invariants after every stimulus (slow; for tests). */
  validate?: boolean;
  /** Concurrent `get-data` transfers served before answering busy. Default 10. */
  transferOutgoingCountLimit?: number;
  /** Peers fetched from at once. Default 10. */
  transferIncomingCountLimit?: number;
  /** Bytes in flight from peers (one request always allowed). Default 50 MiB. */
  transferIncomingBytesLimit?: number;
  /** Timeout for connecting to peers and the scheduler, ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** Log lines go here (default: console.warn for warnings; nothing for debug). */
  logger?: { warn(msg: string, ...rest: unknown[]): void; debug?(msg: string, ...rest: unknown[]): void };
}

export interface CompiledWorkerOptions {
  scheduler: string;
  listen: string;
  nthreads: number;
  name: string | undefined;
  resources: Record<string, number>;
  memoryLimit: number;
  localDirectory: string | undefined;
  cwd: string;
  executor: 'threads' | 'inline';
  executorQueueDepth: number;
  heartbeatIntervalMs: number;
  deathTimeoutMs: number;
  validate: boolean;
  transferOutgoingCountLimit: number;
  transferIncomingCountLimit: number;
  transferIncomingBytesLimit: number;
  connectTimeoutMs: number;
  logger: { warn(msg: string, ...rest: unknown[]): void; debug?(msg: string, ...rest: unknown[]): void };
}

export function compileWorkerOptions(o: WorkerOptions): CompiledWorkerOptions {
  if (typeof o.scheduler !== 'string' || o.scheduler === '') throw new TypeError('Worker: `scheduler` (an address) is required');
  const cpus = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const nthreads = o.nthreads ?? cpus;
  if (!Number.isInteger(nthreads) || nthreads < 1) throw new RangeError(`Worker: nthreads must be a positive integer, got ${nthreads}`);
  const executor = o.executor ?? 'threads';
  if (executor !== 'threads' && executor !== 'inline') throw new TypeError(`Worker: executor must be 'threads' or 'inline', got ${String(executor)}`);
  const executorQueueDepth = o.executorQueueDepth ?? 4;
  if (!Number.isInteger(executorQueueDepth) || executorQueueDepth < 1) {
    throw new RangeError(`Worker: executorQueueDepth must be a positive integer, got ${executorQueueDepth}`);
  }
  let memoryLimit: number;
  if (o.memoryLimit === undefined || o.memoryLimit === 'auto') memoryLimit = Math.floor(os.totalmem() * Math.min(1, nthreads / cpus));
  else memoryLimit = typeof o.memoryLimit === 'number' ? o.memoryLimit : parseBytes(o.memoryLimit);
  const death = o.deathTimeoutMs === undefined ? 60_000 : typeof o.deathTimeoutMs === 'number' ? o.deathTimeoutMs : parseTimedelta(o.deathTimeoutMs); // returns ms
  return {
    scheduler: o.scheduler,
    listen: o.listen ?? 'tcp://127.0.0.1:0',
    nthreads,
    name: o.name,
    resources: { ...(o.resources ?? {}) },
    memoryLimit,
    localDirectory: o.localDirectory,
    cwd: o.cwd ?? process.cwd(),
    executor,
    executorQueueDepth,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? 1000,
    deathTimeoutMs: death,
    validate: o.validate ?? false,
    transferOutgoingCountLimit: o.transferOutgoingCountLimit ?? 10,
    transferIncomingCountLimit: o.transferIncomingCountLimit ?? 10,
    transferIncomingBytesLimit: o.transferIncomingBytesLimit ?? 50 * 2 ** 20,
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
    logger: o.logger ?? { warn: (msg, ...rest) => console.warn(`[dd-worker] ${msg}`, ...rest) },
  };
}
