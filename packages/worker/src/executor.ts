// Executors run tasks for the Worker shell. Two kinds:
//
//  - ThreadPoolExecutor: `nthreads` worker_threads, each running one task at a time and holding
//    up to `queueDepth` (the next ones wait in the thread, so it need not wait for the main
//    thread between tasks; WorkerState hands out at most nthreads x depth). Per task the main
//    thread posts {spec bytes, dependency values}; the thread decodes the spec, substitutes
//    KeyRefs, runs, measures sizeof, and posts the result back. Decoding and sizing happen in the thread, so the main thread (which also
//    serves the network) does as little per task as possible. Values cross by structured clone:
//    dependency values are copied into the thread (the worker keeps its own copy, so nothing can
//    be transferred there), except binary data in shared memory (large values the worker received
//    from the network: setSharedReassembly in worker.ts), which the thread sees without a copy, so
//    tasks must not mutate their arguments (as in the reference, and with the inline executor);
//    result buffers the task owns outright are transferred, not copied.
//    Limits of structured clone apply: class instances arrive as plain objects, functions cannot
//    cross (the task fails with DataCloneError), nested Buffers arrive as Uint8Array (top-level
//    Buffers are restored).
//  - InlineExecutor (`executor: 'inline'`): runs tasks on the main event loop. No copies and any
//    value works, but a synchronous task blocks the worker while it runs. For tests and
//    in-process clusters.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker as Thread } from 'node:worker_threads';
import type { Key, WireRunSpec } from '@dd/protocol';
import { ExecutorError } from './errors';
import type { ThreadLogEvent, ThreadWorkerInfo } from './executor-messages';
import type { TaskWorker } from './task-context';
import type { ThreadCollectRequest, ThreadRequest, ThreadResponse, ThreadSettings } from './executor-messages';
import { adoptFromHost, foreignRealm } from './realm';
import { TaskRunner, wireError, type TaskOutcome } from './task-runner';

export type { TaskOutcome } from './task-runner';

export interface ExecutorJob {
  key: Key;
  spec: WireRunSpec;
  /** Values of the task's dependencies. */
  deps: Map<Key, unknown>;
}

export interface Executor {
  readonly kind: 'threads' | 'inline';
  readonly nthreads: number;
  /** Tasks it takes at once (WorkerState's executeSlots): nthreads x queue depth. */
  readonly slotCount: number;
  /** Runs a task; resolves with its outcome (task errors are outcomes, never rejections). */
  run(job: ExecutorJob): Promise<TaskOutcome>;
  /**
   * Thread pool: whether every job it was given has been answered. An outcome that arrives then
   * is the last one for now: nothing else can come back in the same turn of the event loop.
   */
  readonly idle?: boolean;
  /** Stops the threads (running tasks are abandoned). Idempotent. */
  close(): Promise<void>;
  /** The worker its tasks see through getWorker() (task-context.ts); set once the worker listens. */
  setTaskWorker?(worker: TaskWorker): void;
  /** Asks the threads to collect their garbage (each does when its current task ends). */
  collectGarbage?(): void;
}

export interface ExecutorOptions {
  nthreads: number;
  /**
   * Thread pool: jobs each thread holds at once (default 1). Above 1, a thread keeps the next
   * jobs in its own queue and starts them as soon as the previous one ends, instead of waiting
   * for the main thread's next postMessage (a hop that costs more than a tiny task).
   */
  queueDepth?: number;
  /** Directory for relative module specifiers and `require` in task functions. */
  cwd: string;
  /** Where uploaded modules are (bare specifiers naming one resolve there first). */
  uploadDirectory?: string | undefined;
  /** Thread pool under a memory limit: when threads collect garbage (see garbage.ts). */
  garbage?: { everyBytes: number; aboveBytes: number } | undefined;
}

export class InlineExecutor implements Executor {
  readonly kind = 'inline' as const;
  readonly nthreads: number;
  private readonly runner: TaskRunner;

  constructor(options: ExecutorOptions) {
    this.nthreads = options.nthreads;
    this.runner = new TaskRunner({ cwd: options.cwd, ...(options.uploadDirectory !== undefined ? { uploadDirectory: options.uploadDirectory } : {}) });
  }

  get slotCount(): number {
    return this.nthreads;
  }

  setTaskWorker(worker: TaskWorker): void {
    this.runner.taskWorker = worker;
  }

  async run(job: ExecutorJob): Promise<TaskOutcome> {
    const outcome = await this.runner.run(job.spec, job.deps);
    // Task code is compiled in the host realm (vm.Script): under jest, adopt its results (no-op otherwise).
    if (outcome.ok && foreignRealm) outcome.value = adoptFromHost(outcome.value);
    return outcome;
  }

  async close(): Promise<void> {}
}

/**
 * Where the executor thread's JavaScript is. In dist, next to this file. When this module runs
 * from its TypeScript source (jest transpiles src/*.ts in memory), a worker thread cannot load
 * the .ts file, so the built ../dist/executor-thread.js is used: build the package first
 * (`npx turbo run build --filter=@dd/worker...`; `npm test` does).
 */
export function executorThreadPath(): string {
  const here = __filename.endsWith('.ts') ? path.join(__dirname, '..', 'dist') : __dirname;
  return path.join(here, 'executor-thread.js');
}

interface Job {
  job: ExecutorJob;
  resolve: (o: TaskOutcome) => void;
}

interface Slot {
  thread: Thread;
  /**
   * Jobs posted to this thread and not answered yet, in posting order: the thread runs them one
   * at a time in that order, so the first is the running one and the others wait in its queue.
   */
  jobs: Map<number, Job>;
  /** Requests dispatched in this tick, posted together by flushOutboxes(). */
  outbox: Array<{ req: ThreadRequest; entry: Job }>;
  ready: Promise<void>;
}

export class ThreadPoolExecutor implements Executor {
  readonly kind = 'threads' as const;
  readonly nthreads: number;
  /** Jobs each thread holds at once (1 running + depth-1 queued in the thread). */
  readonly depth: number;
  private readonly slots: Slot[] = [];
  /** Jobs beyond nthreads x depth (WorkerState normally never hands out more). */
  private readonly queue: Job[] = [];
  private nextId = 1;
  private flushScheduled = false;
  private closing = false;
  private readonly entry: string;
  private readonly cwd: string;
  private readonly uploadDirectory: string | undefined;
  /** What getWorker() returns in tasks: its address and name go to the threads, its logEvent gets theirs. */
  private taskWorker: TaskWorker | undefined;
  private readonly garbage: ThreadSettings['garbage'];

  private constructor(options: ExecutorOptions) {
    this.nthreads = options.nthreads;
    this.depth = Math.max(1, Math.floor(options.queueDepth ?? 1));
    this.cwd = path.resolve(options.cwd);
    this.uploadDirectory = options.uploadDirectory;
    this.garbage = options.garbage;
    this.entry = executorThreadPath();
  }

  get slotCount(): number {
    return this.nthreads * this.depth;
  }

  get idle(): boolean {
    if (this.queue.length > 0) return false;
    for (const s of this.slots) if (s.jobs.size > 0) return false;
    return true;
  }

  /** Starts the threads and waits until they are online. */
  static async create(options: ExecutorOptions): Promise<ThreadPoolExecutor> {
    const pool = new ThreadPoolExecutor(options);
    if (!fs.existsSync(pool.entry)) {
      throw new ExecutorError(
        `executor thread file ${pool.entry} does not exist: build @dd/worker first (npx turbo run build --filter=@dd/worker...)`,
      );
    }
    for (let i = 0; i < options.nthreads; i++) pool.spawn();
    try {
      await Promise.all(pool.slots.map((s) => s.ready));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  private spawn(): Slot {
    const settings: ThreadSettings = { cwd: this.cwd, uploadDirectory: this.uploadDirectory, garbage: this.garbage };
    const thread = new Thread(this.entry, { workerData: settings, stdout: false, stderr: false });
    let onlineResolve!: () => void;
    let onlineReject!: (e: unknown) => void;
    const slot: Slot = {
      thread,
      jobs: new Map(),
      outbox: [],
      ready: new Promise<void>((res, rej) => {
        onlineResolve = res;
        onlineReject = rej;
      }),
    };
    slot.ready.catch(() => {});
    thread.once('online', () => onlineResolve());
    thread.on('message', (res: ThreadResponse | ThreadLogEvent) => {
      if ('logEvent' in res) this.onLogEvent(res);
      else this.onResponse(slot, res);
    });
    thread.on('error', (err) => {
      onlineReject(err);
      this.onThreadDeath(slot, err);
    });
    thread.on('exit', (code) => {
      onlineReject(new ExecutorError(`executor thread exited with code ${code} before it was online`));
      this.onThreadDeath(slot, new ExecutorError(`executor thread exited with code ${code}`));
    });
    this.slots.push(slot);
    if (this.taskWorker !== undefined) thread.postMessage(this.workerInfo(this.taskWorker));
    return slot;
  }

  setTaskWorker(worker: TaskWorker): void {
    this.taskWorker = worker;
    // Before any task: messages to a thread arrive in order.
    for (const slot of this.slots) slot.thread.postMessage(this.workerInfo(worker));
  }

  /** A task in a thread logged an event (checked there already): the worker sends it. */
  private onLogEvent(res: ThreadLogEvent): void {
    try {
      this.taskWorker?.logEvent(res.logEvent.topic, res.logEvent.msg);
    } catch {
      // Checked in the thread; a message that fails here anyway is dropped, not thrown into the pool.
    }
  }

  private workerInfo(worker: TaskWorker): ThreadWorkerInfo {
    return { workerInfo: { address: worker.address, name: worker.name } };
  }

  run(job: ExecutorJob): Promise<TaskOutcome> {
    if (this.closing) {
      const now = Date.now();
      return Promise.resolve({ ok: false, error: wireError(new ExecutorError('executor is closed')), start: now, stop: now });
    }
    return new Promise<TaskOutcome>((resolve) => {
      const slot = this.leastBusy();
      if (slot) this.dispatch(slot, { job, resolve });
      else this.queue.push({ job, resolve });
    });
  }

  /** The thread with the fewest jobs, if one has room. */
  private leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (s.jobs.size < this.depth && (best === undefined || s.jobs.size < best.jobs.size)) best = s;
    }
    return best;
  }

  private dispatch(slot: Slot, entry: Job): void {
    const { job } = entry;
    const id = this.nextId++;
    const deps = job.deps;
    let bufferKeys: Key[] | undefined;
    let depBytes = 0;
    for (const [k, v] of deps) {
      if (ArrayBuffer.isView(v)) {
        if (Buffer.isBuffer(v)) (bufferKeys ??= []).push(k);
        // Structured clone copies a view's whole ArrayBuffer (shared memory crosses uncopied).
        depBytes += v.buffer.byteLength;
      }
    }
    const req: ThreadRequest = { id, spec: tightSpec(job.spec), deps };
    if (bufferKeys) req.bufferKeys = bufferKeys;
    if (depBytes > 0) req.depBytes = depBytes;
    slot.jobs.set(id, entry);
    slot.outbox.push({ req, entry });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushOutboxes);
    }
  }

  /**
   * Posts what was dispatched in this tick: one message per thread, an array when several jobs
   * go to the same thread (WorkerState starts several tiny tasks at once after a batch of
   * results). A post that wakes an idle thread cost 70-150 us of the worker's main thread in the
   * map benchmark (the clone itself ~5 us): with batching, 10 000 tiny tasks took ~1 400 posts
   * per worker instead of ~5 100. A lone job goes as before, one microtask later.
   */
  private readonly flushOutboxes = (): void => {
    this.flushScheduled = false;
    for (const slot of this.slots) {
      const box = slot.outbox;
      if (box.length === 0) continue;
      slot.outbox = [];
      if (box.length > 1) {
        try {
          slot.thread.postMessage(box.map((b) => b.req));
          continue;
        } catch {
          // One of them cannot be cloned: post one by one, so only that one fails.
        }
      }
      for (const { req, entry } of box) {
        try {
          slot.thread.postMessage(req);
        } catch (err) {
          // A dependency value that structured clone cannot copy (e.g. a function).
          slot.jobs.delete(req.id);
          const now = Date.now();
          const e = wireError(err);
          entry.resolve({
            ok: false,
            error: { ...e, message: `cannot send the arguments of ${entry.job.key} to an executor thread: ${e.message}` },
            start: now,
            stop: now,
          });
          const next = this.queue.shift();
          if (next) this.dispatch(slot, next);
        }
      }
    }
  };

  collectGarbage(): void {
    const request: ThreadCollectRequest = { collect: true };
    for (const slot of this.slots) slot.thread.postMessage(request);
  }

  private onResponse(slot: Slot, res: ThreadResponse): void {
    const entry = slot.jobs.get(res.id);
    if (!entry) return;
    slot.jobs.delete(res.id);
    const next = this.queue.shift();
    if (next) this.dispatch(slot, next);
    if (res.ok) {
      let value = adoptFromHost(res.value);
      if (res.isBuffer && value instanceof Uint8Array) value = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      entry.resolve({ ok: true, value, nbytes: res.nbytes, type: res.type, start: res.start, stop: res.stop });
    } else {
      // Re-create the error object in this realm (structured clone makes it in the host realm,
      // which differs from a vm context such as jest's, where plain-object checks would fail).
      entry.resolve({ ok: false, error: { ...res.error }, start: res.start, stop: res.stop });
    }
  }

  private onThreadDeath(slot: Slot, err: unknown): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return; // already handled ('error' is followed by 'exit')
    this.slots.splice(i, 1);
    const jobs = [...slot.jobs.values()];
    slot.jobs.clear();
    slot.outbox = [];
    // The first job was the running one: it fails. The ones queued behind it never started: they
    // go to the front of the queue, for the replacement thread.
    const running = jobs.shift();
    this.queue.unshift(...jobs);
    if (running) {
      const now = Date.now();
      const e = wireError(err);
      running.resolve({
        ok: false,
        error: { ...e, name: e.name === 'Error' ? 'ExecutorError' : e.name, message: `the executor thread died while running the task: ${e.message}` },
        start: now,
        stop: now,
      });
    }
    if (!this.closing) {
      const fresh = this.spawn();
      while (this.queue.length > 0 && fresh.jobs.size < this.depth) this.dispatch(fresh, this.queue.shift()!);
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const slots = this.slots.splice(0);
    const now = Date.now();
    const closed = (): TaskOutcome => ({ ok: false, error: wireError(new ExecutorError('executor closed')), start: now, stop: now });
    for (const q of this.queue.splice(0)) q.resolve(closed());
    await Promise.all(
      slots.map(async (s) => {
        for (const j of s.jobs.values()) j.resolve(closed());
        s.jobs.clear();
        await s.thread.terminate();
      }),
    );
  }
}

/**
 * The spec with its bytes in an ArrayBuffer of their own. A spec decoded from the wire is a view
 * into the whole received chunk, and structured clone copies a view's entire ArrayBuffer: posting
 * a 300-byte spec that lives in a 1 MiB chunk cost ~2 ms instead of ~20 us (measured), which
 * dominated a worker's per-task cost.
 */
function tightSpec(spec: WireRunSpec): WireRunSpec {
  const data = spec.data;
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return spec;
  return { language: spec.language, data: data.slice() };
}

/** Creates the executor a Worker asked for. */
export async function createExecutor(kind: 'threads' | 'inline', options: ExecutorOptions): Promise<Executor> {
  return kind === 'inline' ? new InlineExecutor(options) : ThreadPoolExecutor.create(options);
}
