// LocalCluster: a scheduler in this process plus workers, either as child processes (the
// default; @dd/worker's process entry, one process per worker) or in this process.

import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Scheduler } from '@dd/scheduler';
import { Worker, workerProcessEnv } from '@dd/worker';
import { TimeoutError } from './errors';

export interface LocalClusterOptions {
  /** Number of workers (default: min(4, cores)). */
  nWorkers?: number;
  /** Threads per worker (default: cores / nWorkers, at least 1). */
  threadsPerWorker?: number;
  /** Workers as child processes (default true) or in this process. */
  processes?: boolean;
  /** Where the scheduler listens (default tcp://127.0.0.1:0, a free port). */
  schedulerAddress?: string;
  /** Where each worker listens (default tcp://127.0.0.1:0). */
  workerAddress?: string;
  /** Bytes of memory per worker (0 = no limit, the default). */
  memoryLimit?: number;
  /** Abstract resources each worker declares, e.g. { GPU: 1 }. */
  resources?: Record<string, number>;
  /** Scheduler validate mode (checks invariants after every transition; for tests). */
  validate?: boolean;
  /** How long to wait for each worker to start, ms (default 30 000). */
  startTimeoutMs?: number;
  /** How long a worker process gets to close cleanly before it is killed, ms (default 5 000). */
  closeTimeoutMs?: number;
  /** Extra options passed to every worker. */
  workerOptions?: Record<string, unknown>;
  /** Extra options passed to the scheduler. */
  schedulerOptions?: Record<string, unknown>;
}

/** One worker of a LocalCluster. */
export interface LocalWorker {
  readonly name: string;
  readonly address: string;
  /** Child process id (processes: true). */
  readonly pid: number | undefined;
  /** The Worker object (processes: false). */
  readonly worker: Worker | undefined;
}

interface WorkerSlot {
  name: string;
  address: string;
  pid: number | undefined;
  worker: Worker | undefined;
  child: ChildProcess | undefined;
  /** What it was started with (restart starts a fresh one alike). */
  options: Record<string, unknown>;
}

/** Children of every LocalCluster in this process: killed if the process exits without closing them. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function workerProcessEntry(): string {
  return join(dirname(require.resolve('@dd/worker/package.json')), 'dist', 'process-main.js');
}

export class LocalCluster implements AsyncDisposable {
  readonly scheduler: Scheduler;
  readonly #slots: WorkerSlot[] = [];
  readonly #options: LocalClusterOptions;
  #closing: Promise<void> | undefined;
  #counter = 0;

  private constructor(scheduler: Scheduler, options: LocalClusterOptions) {
    this.scheduler = scheduler;
    this.#options = options;
  }

  /** Starts the scheduler and the workers; resolves once every worker has registered. */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const cores = availableParallelism();
    const nWorkers = options.nWorkers ?? Math.max(1, Math.min(4, cores));
    const threadsPerWorker = options.threadsPerWorker ?? Math.max(1, Math.floor(cores / Math.max(1, nWorkers)));
    const opts: LocalClusterOptions = { processes: true, ...options, nWorkers, threadsPerWorker };
    const scheduler = await Scheduler.start({
      address: opts.schedulerAddress ?? 'tcp://127.0.0.1:0',
      ...(opts.validate !== undefined ? { validate: opts.validate } : {}),
      ...opts.schedulerOptions,
    } as Parameters<typeof Scheduler.start>[0]);
    const cluster = new LocalCluster(scheduler, opts);
    // client.restart(): the scheduler asks us to replace our workers (they have no nanny).
    scheduler.workerRestarter = async (addresses, timeoutMs) => void (await cluster.restartWorkers(addresses, timeoutMs));
    try {
      await Promise.all(Array.from({ length: nWorkers }, () => cluster.startWorker()));
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  get schedulerAddress(): string {
    return this.scheduler.address;
  }

  /** The scheduler's in-process address: clients in this process connect through it (no network). */
  get localSchedulerAddress(): string {
    return this.scheduler.localAddress;
  }

  get workers(): LocalWorker[] {
    return this.#slots.map((s) => ({ name: s.name, address: s.address, pid: s.pid, worker: s.worker }));
  }

  /** Process ids of the worker processes still running. */
  get pids(): number[] {
    return this.#slots.flatMap((s) => (s.child !== undefined && s.child.exitCode === null && s.child.signalCode === null && s.pid !== undefined ? [s.pid] : []));
  }

  /** Starts one more worker (same options as the others unless overridden). */
  async startWorker(overrides: { name?: string; nthreads?: number; resources?: Record<string, number>; memoryLimit?: number } = {}): Promise<LocalWorker> {
    if (this.#closing !== undefined) throw new Error('LocalCluster is closed');
    const o = this.#options;
    const name = overrides.name ?? `worker-${this.#counter++}`;
    const workerOpts: Record<string, unknown> = {
      scheduler: this.scheduler.address,
      listen: o.workerAddress ?? 'tcp://127.0.0.1:0',
      nthreads: overrides.nthreads ?? o.threadsPerWorker ?? 1,
      name,
      memoryLimit: overrides.memoryLimit ?? o.memoryLimit ?? 0,
      resources: overrides.resources ?? o.resources ?? {},
      ...o.workerOptions,
    };
    const slot: WorkerSlot = { name, address: '', pid: undefined, worker: undefined, child: undefined, options: workerOpts };
    this.#slots.push(slot);
    await this.#launch(slot);
    return { name, address: slot.address, pid: slot.pid, worker: slot.worker };
  }

  /**
   * Replaces the given workers (all by default) with fresh ones of the same options: new
   * processes (processes: true) or new Worker objects; resolves once they registered.
   * `client.restart()` calls this through the scheduler.
   */
  async restartWorkers(addresses?: readonly string[], timeoutMs = 60_000): Promise<LocalWorker[]> {
    if (this.#closing !== undefined) throw new Error('LocalCluster is closed');
    const slots = addresses === undefined ? [...this.#slots] : this.#slots.filter((s) => addresses.includes(s.address) || addresses.includes(s.name));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`LocalCluster: workers did not restart within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([
        timeout,
        Promise.all(slots.map(async (slot) => {
          await this.#stopSlot(slot);
          if (this.#closing !== undefined) throw new Error('LocalCluster is closed');
          slot.worker = undefined;
          slot.child = undefined;
          slot.pid = undefined;
          await this.#launch(slot);
        })),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return slots.map((s) => ({ name: s.name, address: s.address, pid: s.pid, worker: s.worker }));
  }

  async #launch(slot: WorkerSlot): Promise<void> {
    const workerOpts = slot.options;
    if (this.#options.processes === false) {
      const worker = await Worker.start(workerOpts as unknown as Parameters<typeof Worker.start>[0]);
      slot.worker = worker;
      slot.address = worker.address;
    } else {
      await this.#forkWorker(slot, workerOpts);
    }
  }

  #forkWorker(slot: WorkerSlot, workerOpts: Record<string, unknown>): Promise<void> {
    installExitHook();
    const timeoutMs = this.#options.startTimeoutMs ?? 30_000;
    // Options go in the environment, not the command line: they may hold a TLS private key.
    const env = { ...workerProcessEnv(), DD_WORKER_OPTIONS: JSON.stringify(workerOpts) };
    const child = fork(workerProcessEntry(), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
    slot.child = child;
    slot.pid = child.pid;
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        child.kill('SIGKILL');
        reject(new TimeoutError(`worker process ${slot.name} did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (msg: { type?: string; address?: string; message?: string }): void => {
        if (msg?.type === 'ready' && typeof msg.address === 'string') {
          cleanup();
          slot.address = msg.address;
          resolve();
        } else if (msg?.type === 'error') {
          cleanup();
          reject(new Error(`worker process ${slot.name} failed to start: ${msg.message ?? 'unknown error'}`));
        }
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        reject(new Error(`worker process ${slot.name} exited before it was ready (${signal ?? `code ${code}`})`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  }

  /** Stops one worker (cleanly: it tells the scheduler it leaves). */
  async stopWorker(address: string): Promise<void> {
    const i = this.#slots.findIndex((s) => s.address === address || s.name === address);
    if (i < 0) throw new Error(`no worker ${address} in this cluster`);
    const [slot] = this.#slots.splice(i, 1);
    await this.#stopSlot(slot!);
  }

  async #stopSlot(slot: WorkerSlot): Promise<void> {
    if (slot.worker !== undefined) {
      await slot.worker.close();
      return;
    }
    const child = slot.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const closeTimeoutMs = this.#options.closeTimeoutMs ?? 5000;
    await new Promise<void>((resolve) => {
      const killTimer = setTimeout(() => child.kill('SIGKILL'), closeTimeoutMs);
      child.once('exit', () => {
        clearTimeout(killTimer);
        liveChildren.delete(child);
        resolve();
      });
      if (child.connected) {
        child.send({ type: 'close' }, (err) => {
          if (err) child.kill('SIGTERM');
        });
      } else {
        child.kill('SIGTERM');
      }
    });
  }

  /** Stops every worker, then the scheduler. Leaves no process behind; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const slots = this.#slots.splice(0);
      await Promise.all(slots.map((s) => this.#stopSlot(s).catch(() => s.child?.kill('SIGKILL'))));
      this.scheduler.workerRestarter = undefined;
      await this.scheduler.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
