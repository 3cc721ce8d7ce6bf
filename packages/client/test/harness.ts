// In-process cluster fixture, like the reference's gen_cluster: a scheduler (validate mode),
// workers and a client in this process, talking over loopback tcp. Everything is closed in
// `finally`, also when the test body fails or runs out of time, and the scheduler's state is
// validated after the body.

import { Scheduler } from '@dd/scheduler';
import { Worker } from '@dd/worker';
import { Client, type ConnectOptions } from '../src/index';

export interface WorkerSpec {
  name?: string;
  nthreads?: number;
  resources?: Record<string, number>;
  memoryLimit?: number;
  /** 'threads' (default, needs @dd/worker built) or 'inline'. */
  executor?: 'threads' | 'inline';
}

export interface ClusterSpec {
  /** Number of workers (default 2), each with `nthreads` threads (default 1) and `resources`. */
  nWorkers?: number;
  nthreads?: number;
  resources?: Record<string, number>;
  /** Per-worker specs; overrides nWorkers/nthreads/resources. */
  workers?: WorkerSpec[];
  /** Bound on the whole test body, ms (default 20 000). */
  timeoutMs?: number;
  /** Listen scheme (default tcp). */
  transport?: 'tcp' | 'inproc';
  client?: ConnectOptions | false;
}

export interface ClusterContext {
  scheduler: Scheduler;
  workers: Worker[];
  client: Client;
  /** Starts another worker (it is closed with the cluster). */
  startWorker(spec?: WorkerSpec): Promise<Worker>;
}

let nameCounter = 0;

export async function startTestWorker(scheduler: Scheduler, spec: WorkerSpec = {}, transport: 'tcp' | 'inproc' = 'tcp'): Promise<Worker> {
  return await Worker.start({
    scheduler: scheduler.address,
    listen: transport === 'tcp' ? 'tcp://127.0.0.1:0' : 'inproc://',
    nthreads: spec.nthreads ?? 1,
    name: spec.name ?? `test-worker-${nameCounter++}`,
    memoryLimit: spec.memoryLimit ?? 0,
    resources: spec.resources ?? {},
    validate: true,
    ...(spec.executor !== undefined ? { executor: spec.executor } : {}),
  } as unknown as Parameters<typeof Worker.start>[0]);
}

/** Validates the scheduler's state machine (throws on a broken invariant). */
export function validateScheduler(scheduler: Scheduler): void {
  const s = scheduler as unknown as { validateState?: () => void; state?: { validateState?: () => void } };
  if (typeof s.validateState === 'function') s.validateState();
  else s.state?.validateState?.();
}

export async function withCluster(spec: ClusterSpec, body: (ctx: ClusterContext) => Promise<void>): Promise<void> {
  const transport = spec.transport ?? 'tcp';
  const workers: Worker[] = [];
  let scheduler: Scheduler | undefined;
  let client: Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    scheduler = await Scheduler.start({
      address: transport === 'tcp' ? 'tcp://127.0.0.1:0' : 'inproc://',
      validate: true,
    } as unknown as Parameters<typeof Scheduler.start>[0]);
    const specs: WorkerSpec[] = spec.workers ?? Array.from({ length: spec.nWorkers ?? 2 }, () => ({ nthreads: spec.nthreads ?? 1, resources: spec.resources }));
    const sched = scheduler;
    workers.push(...(await Promise.all(specs.map((s) => startTestWorker(sched, s, transport)))));
    if (spec.client !== false) client = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0, ...(spec.client ?? {}) });
    const ctx: ClusterContext = {
      scheduler,
      workers,
      client: client!,
      startWorker: async (s) => {
        const w = await startTestWorker(sched, s, transport);
        workers.push(w);
        return w;
      },
    };
    const timeoutMs = spec.timeoutMs ?? 20_000;
    await Promise.race([
      body(ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`cluster test timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    validateScheduler(scheduler);
  } finally {
    clearTimeout(timer);
    const errors: unknown[] = [];
    await client?.close().catch((e: unknown) => errors.push(e));
    await Promise.all(workers.map((w) => w.close().catch((e: unknown) => errors.push(e))));
    await scheduler?.close().catch((e: unknown) => errors.push(e));
    if (errors.length > 0) console.warn('cluster teardown errors', errors);
  }
}

/** Polls `cond` until it holds (or throws after timeoutMs). */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Keys held in a worker's data store. */
export function workerKeys(w: Worker): string[] {
  return [...w.data.keys()];
}
