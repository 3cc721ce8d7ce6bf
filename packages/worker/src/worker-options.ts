// Worker options: what users pass, and the compiled form with every default applied (once).

import * as os from 'node:os';
import type { CommOptions } from '@dd/comm';
import { parseBytes, parseTimedelta } from '@dd/protocol';
import { DEFAULT_MEMORY_FRACTIONS, type MemoryFractions } from './memory-monitor';

export interface WorkerOptions {
  /** Scheduler address, e.g. `tcp://127.0.0.1:8786` or `inproc://...`. */
  scheduler: string;
  /** Address to listen on for peers and clients. Default `tcp://127.0.0.1:0` (a free port). */
  listen?: string;
  /**
   * Options of every connection the worker makes or accepts (to the scheduler, to and from peers
   * and clients): TLS material (`ca`, `cert`, `key`: PEM strings or Buffers) for `tls://` and
   * `wss://` clusters, frame limits, compression. The same certificate serves both directions.
   */
  comm?: CommOptions;
  /** Tasks run at once. Default: the number of CPUs. */
  nthreads?: number;
  /** Name the scheduler knows the worker by. Default: its address. */
  name?: string;
  /** Abstract resources offered, e.g. `{GPU: 2}`. */
  resources?: Record<string, number>;
  /** Bytes (or '4GB', or 'auto': total memory × min(1, nthreads / CPUs)). Reported to the scheduler. */
  memoryLimit?: number | string;
  /**
   * What the worker does as memory grows, as fractions of memoryLimit (false turns one off):
   * target 0.6 (results beyond it, by sizeof, are spilled to disk, least recently used first),
   * spill 0.7 (process memory beyond it spills too), pause 0.8 (no new task starts while process
   * memory is beyond it), terminate 0.95 (the nanny restarts the worker). `monitorIntervalMs`
   * (default 200) is how often process memory is read; `processMemory` replaces the reading
   * (RSS; for tests, in-process only).
   */
  memory?: Partial<MemoryFractions> & { monitorIntervalMs?: number; processMemory?: () => number };
  /** Scratch directory (spilled data, uploaded files later). Default: a fresh temp directory, removed on close. */
  localDirectory?: string;
  /**
   * Modules whose `ddSetup(worker)` runs once the worker listens, before it registers (paths
   * relative to `cwd`, uploaded modules, or packages); `ddTeardown(worker)` runs at close. A
   * module that fails to load or set up stops the worker from starting (PreloadError).
   */
  preload?: string[];
  /** Directory that module references and `require` in task functions resolve against. Default: process.cwd(). */
  cwd?: string;
  /** 'threads' (default): a worker_threads pool; 'inline': on the main event loop. */
  executor?: 'threads' | 'inline';
  /**
   * Thread pool: tasks each thread holds at once, the running one and the next ones queued in
   * the thread (default 64; only tasks measured tiny queue, and at most ~8 ms of them, see
   * WorkerState). Above 1 a thread goes straight to its next task instead of waiting a
   * main-thread round trip, which costs more than a tiny task; 1 is strict one-task-per-thread.
   * Deeper queues also mean fewer wake-ups of a thread that ran dry: posting to a sleeping thread
   * cost the worker's main thread 33-50 us here, to a busy one 1-2 us.
   */
  executorQueueDepth?: number;
  /** Default 1000 ms (the scheduler's register reply may change it). */
  heartbeatIntervalMs?: number;
  /** Close if the scheduler cannot be reached for this long (ms or '60s'). Default 60 s; 0 = never. */
  deathTimeoutMs?: number | string;
  /** Check WorkerState invariants after every stimulus (slow; for tests). */
  validate?: boolean;
  /** Rpc address of the nanny running this worker process, told to the scheduler (for `restart`). */
  nanny?: string;
  /** Concurrent `get-data` transfers served before answering busy. Default 10. */
  transferOutgoingCountLimit?: number;
  /** Peers fetched from at once. Default 10. */
  transferIncomingCountLimit?: number;
  /** Bytes in flight from peers (one request always allowed). Default 50 MiB. */
  transferIncomingBytesLimit?: number;
  /** Timeout for connecting to peers and the scheduler, ms. Default 10 000. */
  connectTimeoutMs?: number;
  /**
   * Serve /health, /metrics and /status over HTTP here: ':0' (a free port), ':8789', 'host:port'.
   * The host defaults to the worker's own. Default: off (dd-worker turns it on).
   */
  dashboardAddress?: string | number;
  /** Log lines go here (default: console.warn for warnings; nothing for debug). */
  logger?: { warn(msg: string, ...rest: unknown[]): void; debug?(msg: string, ...rest: unknown[]): void };
}

export interface CompiledWorkerOptions {
  scheduler: string;
  listen: string;
  comm: CommOptions;
  nthreads: number;
  name: string | undefined;
  resources: Record<string, number>;
  memoryLimit: number;
  memory: MemoryFractions & { monitorIntervalMs: number; processMemory: () => number };
  localDirectory: string | undefined;
  preload: string[];
  cwd: string;
  executor: 'threads' | 'inline';
  executorQueueDepth: number;
  heartbeatIntervalMs: number;
  deathTimeoutMs: number;
  validate: boolean;
  nanny: string | undefined;
  transferOutgoingCountLimit: number;
  transferIncomingCountLimit: number;
  transferIncomingBytesLimit: number;
  connectTimeoutMs: number;
  dashboardAddress: string | undefined;
  logger: { warn(msg: string, ...rest: unknown[]): void; debug?(msg: string, ...rest: unknown[]): void };
}

export function compileWorkerOptions(o: WorkerOptions): CompiledWorkerOptions {
  if (typeof o.scheduler !== 'string' || o.scheduler === '') throw new TypeError('Worker: `scheduler` (an address) is required');
  const cpus = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const nthreads = o.nthreads ?? cpus;
  if (!Number.isInteger(nthreads) || nthreads < 1) throw new RangeError(`Worker: nthreads must be a positive integer, got ${nthreads}`);
  const executor = o.executor ?? 'threads';
  if (executor !== 'threads' && executor !== 'inline') throw new TypeError(`Worker: executor must be 'threads' or 'inline', got ${String(executor)}`);
  const executorQueueDepth = o.executorQueueDepth ?? 64;
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
    comm: { ...(o.comm ?? {}) },
    nthreads,
    name: o.name,
    resources: { ...(o.resources ?? {}) },
    memoryLimit,
    memory: compileMemory(o.memory),
    localDirectory: o.localDirectory,
    preload: [...(o.preload ?? [])],
    cwd: o.cwd ?? process.cwd(),
    executor,
    executorQueueDepth,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? 1000,
    deathTimeoutMs: death,
    validate: o.validate ?? false,
    nanny: o.nanny,
    transferOutgoingCountLimit: o.transferOutgoingCountLimit ?? 10,
    transferIncomingCountLimit: o.transferIncomingCountLimit ?? 10,
    transferIncomingBytesLimit: o.transferIncomingBytesLimit ?? 50 * 2 ** 20,
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
    dashboardAddress: o.dashboardAddress === undefined || o.dashboardAddress === null ? undefined : String(o.dashboardAddress),
    logger: o.logger ?? { warn: (msg, ...rest) => console.warn(`[dd-worker] ${msg}`, ...rest) },
  };
}

function compileMemory(m: WorkerOptions['memory']): CompiledWorkerOptions['memory'] {
  const out = { ...DEFAULT_MEMORY_FRACTIONS };
  for (const name of ['target', 'spill', 'pause', 'terminate'] as const) {
    const v = m?.[name];
    if (v === undefined) continue;
    if (v !== false && !(typeof v === 'number' && v > 0)) throw new RangeError(`Worker: memory.${name} must be a positive fraction or false, got ${String(v)}`);
    out[name] = v;
  }
  const monitorIntervalMs = m?.monitorIntervalMs ?? 200;
  if (!(monitorIntervalMs > 0)) throw new RangeError(`Worker: memory.monitorIntervalMs must be positive, got ${monitorIntervalMs}`);
  return { ...out, monitorIntervalMs, processMemory: m?.processMemory ?? (() => process.memoryUsage.rss()) };
}
