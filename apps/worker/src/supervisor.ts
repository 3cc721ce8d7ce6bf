// The nanny: runs worker processes and keeps them running (the reference's Nanny, one for
// several worker processes).
//
// - A worker process that crashes (a signal, a non-zero exit) is started again (with a growing delay
//   if it keeps dying), so one crash does not shrink the cluster. One that exits 0 unasked closed
//   on purpose (scheduler close or retire, death timeout) and is not; nor is one past --lifetime,
//   nor one that could not start (it reports why over IPC; dd-worker then exits 1).
// - Memory: every memoryCheckIntervalMs it reads each worker's RSS (Linux /proc); one above the
//   terminate fraction (default 0.95) of its memory limit is killed, with a log line saying why,
//   and started again (its tasks go back to the scheduler, which counts them as suspicious).
//   Workers start with malloc's trim threshold low, so that RSS shows the memory they hold
//   (workerProcessEnv in @dd/worker).
// - restart(): closes worker processes cleanly and starts fresh ones; `serve(address)` offers it
//   (and `identity`) as rpc ops, for `client.restart()` and operators.
// - close(signal): each worker is told to close over IPC (or sent the signal), and killed after
//   closeTimeoutMs; dd-worker calls it on SIGINT/SIGTERM.
//
// Each child is @dd/worker's process entry, given its options as JSON.

import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EventEmitter } from 'node:events';
import { Server, type CommOptions } from '@dd/comm';
import { formatBytes } from '@dd/protocol';
import { workerProcessEnv } from '@dd/worker';
import type { WorkerProcessOptions } from './options';

export interface SupervisorOptions {
  /** Close each worker after this long and do not restart it. */
  lifetimeMs?: number;
  /** How long a worker gets to close cleanly before it is killed. */
  closeTimeoutMs?: number;
  /** First restart delay; doubles for each quick death, up to maxRestartDelayMs. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** A worker that ran this long before dying is restarted without delay growth. */
  stableAfterMs?: number;
  /**
   * Fraction of a worker's memoryLimit (its `memory.terminate`, else this; default 0.95) above
   * which its process is killed and restarted; false: never.
   */
  terminateFraction?: number | false;
  /** How often worker memory is read (default 200 ms). */
  memoryCheckIntervalMs?: number;
  /** Memory of a process in bytes (default: VmRSS from /proc/<pid>/status); undefined if unknown. */
  processMemory?: (pid: number) => number | undefined;
  /** Where the process entry lives; defaults to @dd/worker's dist/process-main.js. */
  entry?: string;
  log?: (line: string) => void;
}

interface Slot {
  index: number;
  options: WorkerProcessOptions;
  child?: ChildProcess;
  startedAt: number;
  restartDelayMs: number;
  address?: string;
  stopping: boolean;
  /** Why the nanny killed it (memory), so its exit is not a mystery and it restarts after the base delay (no growth). */
  killedFor?: string;
  restartTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
  /** What the worker process reported when it could not start (it then exits 1). */
  startError?: string;
}

/** What `identity` reports of each worker process. */
export interface NannyWorkerInfo {
  index: number;
  pid: number | undefined;
  address: string | undefined;
  memoryLimit: number;
}

export function workerProcessEntry(): string {
  return join(dirname(require.resolve('@dd/worker/package.json')), 'dist', 'process-main.js');
}

/** VmRSS of a process (Linux); undefined where /proc is not available or the process is gone. */
export function procRss(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Emits 'ready' (index, address) each time a worker process registers, 'exit' (index, code, signal). */
export class WorkerSupervisor extends EventEmitter {
  private readonly slots: Slot[];
  private readonly entry: string;
  private readonly settings: Required<Omit<SupervisorOptions, 'lifetimeMs' | 'entry' | 'log'>> & Pick<SupervisorOptions, 'lifetimeMs'>;
  private readonly log: (line: string) => void;
  private closing?: Promise<void>;
  private memoryTimer?: NodeJS.Timeout;
  private server?: Server;
  private resolveDone!: () => void;
  /** Worker processes that could not start (bad configuration, a failing preload, no scheduler within the death timeout). */
  failedToStart = 0;
  /** Resolves once every worker has stopped for good (close(), or each reached its lifetime). */
  readonly done: Promise<void> = new Promise((resolve) => { this.resolveDone = resolve; });

  constructor(workers: WorkerProcessOptions[], options: SupervisorOptions = {}) {
    super();
    this.entry = options.entry ?? workerProcessEntry();
    this.log = options.log ?? ((line) => console.log(line));
    this.settings = {
      closeTimeoutMs: options.closeTimeoutMs ?? 10_000,
      restartDelayMs: options.restartDelayMs ?? 500,
      maxRestartDelayMs: options.maxRestartDelayMs ?? 30_000,
      stableAfterMs: options.stableAfterMs ?? 60_000,
      terminateFraction: options.terminateFraction ?? 0.95,
      memoryCheckIntervalMs: options.memoryCheckIntervalMs ?? 200,
      processMemory: options.processMemory ?? procRss,
      lifetimeMs: options.lifetimeMs,
    };
    this.slots = workers.map((w, index) => ({ index, options: w, startedAt: 0, restartDelayMs: this.settings.restartDelayMs, stopping: false }));
  }

  /** Worker processes currently alive, by slot. */
  get pids(): number[] {
    return this.slots.flatMap((s) => (this.isAlive(s) && s.child!.pid !== undefined ? [s.child!.pid] : []));
  }

  /** Each worker process: its pid and address (undefined while it starts). */
  get workers(): NannyWorkerInfo[] {
    return this.slots.map((s) => ({
      index: s.index,
      pid: this.isAlive(s) ? s.child!.pid : undefined,
      address: this.isAlive(s) ? s.address : undefined,
      memoryLimit: s.options.memoryLimit,
    }));
  }

  /** Address of the rpc server (serve()), if any. */
  get address(): string | undefined {
    return this.server?.address;
  }

  start(): void {
    for (const slot of this.slots) this.spawn(slot);
    if (this.settings.terminateFraction !== false || this.slots.some((s) => typeof s.options.memory?.terminate === 'number')) {
      this.memoryTimer = setInterval(() => this.checkMemory(), this.settings.memoryCheckIntervalMs);
      this.memoryTimer.unref();
    }
  }

  /**
   * Serves `restart` ({workers?: addresses or slot indices}: restarts those, or all; replies with
   * the new addresses) and `identity` over @dd/comm at `address` (e.g. tcp://127.0.0.1:0), with
   * `comm`'s TLS material for a tls:// address (in a TLS cluster only the scheduler, holding a
   * certificate of the cluster's CA, can ask for a restart).
   */
  async serve(address: string, comm: CommOptions = {}): Promise<string> {
    const server = new Server({
      ...comm,
      name: 'dd-nanny',
      handlers: {
        identity: () => ({ type: 'nanny', pid: process.pid, workers: this.workers }),
        restart: async (msg: { workers?: Array<string | number>; timeoutMs?: number }) => {
          const indices = msg?.workers?.map((w) => this.indexOf(w));
          return { status: 'OK', workers: await this.restart(indices, msg?.timeoutMs) };
        },
      },
    });
    await server.listen(address);
    this.server = server;
    return server.address;
  }

  /**
   * Closes the given worker processes (all by default) cleanly and starts fresh ones; resolves
   * with their new addresses once they registered with the scheduler.
   */
  async restart(indices?: number[], timeoutMs = 60_000): Promise<string[]> {
    const slots = indices === undefined ? this.slots : indices.map((i) => this.slots[i]!);
    return await Promise.all(slots.map(async (slot) => {
      if (this.closing) throw new Error('the nanny is closing');
      this.log(`Restarting worker process ${slot.index} (${slot.address ?? 'not yet registered'})`);
      await this.stopChild(slot, true);
      if (this.closing) throw new Error('the nanny is closing');
      slot.stopping = false;
      slot.restartDelayMs = this.settings.restartDelayMs;
      const ready = this.nextReady(slot, timeoutMs);
      this.spawn(slot);
      return await ready;
    }));
  }

  /** Resolves once every worker process has exited (killed after closeTimeoutMs). Idempotent. */
  close(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.memoryTimer);
      await Promise.all(this.slots.map((s) => this.stopSlot(s, signal)));
      await this.server?.close().catch(() => undefined);
    })();
    return this.closing;
  }

  private indexOf(w: string | number): number {
    if (typeof w === 'number' && this.slots[w] !== undefined) return w;
    const slot = this.slots.find((s) => s.address === w || s.options.name === w);
    if (slot === undefined) throw new Error(`no worker process ${JSON.stringify(w)} here`);
    return slot.index;
  }

  private nextReady(slot: Slot, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const onReady = (index: number, address: string) => {
        if (index !== slot.index) return;
        clearTimeout(timer);
        this.off('ready', onReady);
        resolve(address);
      };
      const timer = setTimeout(() => {
        this.off('ready', onReady);
        reject(new Error(`worker process ${slot.index} did not come back within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('ready', onReady);
    });
  }

  private checkMemory(): void {
    for (const slot of this.slots) {
      const fraction = slot.options.memory?.terminate ?? this.settings.terminateFraction;
      const limit = slot.options.memoryLimit;
      if (fraction === false || !(limit > 0) || slot.stopping || slot.killedFor !== undefined || !this.isAlive(slot)) continue;
      const pid = slot.child!.pid;
      const rss = pid === undefined ? undefined : this.settings.processMemory(pid);
      if (rss === undefined || rss <= fraction * limit) continue;
      slot.killedFor = `exceeded ${Math.round(fraction * 100)}% of its memory limit (RSS ${formatBytes(rss)} of ${formatBytes(limit)})`;
      // Before it registered it is not restarted (see the exit handler).
      this.log(`Worker process ${slot.index} (${slot.address ?? 'not yet registered'}) ${slot.killedFor}; terminating ${slot.address === undefined ? 'it' : 'and restarting it'}`);
      slot.child!.kill('SIGKILL');
    }
  }

  private spawn(slot: Slot): void {
    slot.startedAt = Date.now();
    slot.address = undefined;
    slot.killedFor = undefined;
    slot.startError = undefined;
    // Workers tell the scheduler where their nanny is (serve() before start() for that).
    const options = this.server === undefined ? slot.options : { ...slot.options, nanny: this.server.address };
    // Options go in the environment, not the command line: they may hold a TLS private key.
    const env = { ...workerProcessEnv(), DD_WORKER_OPTIONS: JSON.stringify(options) };
    const child = fork(this.entry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
    slot.child = child;
    child.on('message', (msg: { type?: string; address?: string; dashboard?: string; message?: string }) => {
      if (msg?.type === 'error') slot.startError = typeof msg.message === 'string' ? msg.message : 'unknown error';
      if (msg?.type === 'ready' && typeof msg.address === 'string') {
        slot.address = msg.address;
        this.log(`Worker at: ${msg.address}`);
        if (typeof msg.dashboard === 'string') this.log(`Worker dashboard at: ${msg.dashboard}/status`);
        this.emit('ready', slot.index, msg.address);
      }
    });
    child.on('error', (err) => this.log(`worker process ${slot.index}: ${err.message}`));
    child.on('exit', (code, signal) => {
      this.emit('exit', slot.index, code, signal);
      if (slot.child !== child || slot.stopping || this.closing) return;
      if (slot.startError !== undefined) {
        // It could not start (a bad option, a failing preload, no scheduler within its death
        // timeout): starting it again would fail the same way, so this slot ends here.
        this.failedToStart++;
        this.endSlot(slot, `could not start (${slot.startError})`);
        return;
      }
      if (slot.killedFor !== undefined && slot.address === undefined) {
        // Over its memory limit before it even registered: a new process would start the same
        // way and be killed again, forever (seen with --memory-limit 50MB, below what a bare
        // worker process uses).
        this.failedToStart++;
        this.endSlot(slot, `could not start: it ${slot.killedFor} before registering with the scheduler; the limit leaves no room to start a worker process, raise --memory-limit`);
        return;
      }
      if (code === 0 && slot.killedFor === undefined) {
        // A worker process exits 0 unasked only when its worker closed on purpose: the scheduler
        // closed or retired it, or it lost the scheduler for longer than its death timeout. As
        // with the reference's nanny, that is the end of this slot, not a crash to recover from;
        // once every slot has ended, the supervisor is done (dd-worker exits).
        this.endSlot(slot, `(${slot.address ?? 'not yet registered'}) closed (the scheduler closed or retired it, or its death timeout passed)`);
        return;
      }
      const ranMs = Date.now() - slot.startedAt;
      if (slot.killedFor !== undefined) {
        // Killed on purpose (memory): no growing delay, it is not crashing on its own.
        slot.restartDelayMs = this.settings.restartDelayMs;
      } else {
        slot.restartDelayMs = ranMs > this.settings.stableAfterMs
          ? this.settings.restartDelayMs
          : Math.min(slot.restartDelayMs * 2, this.settings.maxRestartDelayMs);
      }
      const why = slot.killedFor !== undefined ? `was terminated: it ${slot.killedFor}` : `died with ${signal ? `signal ${signal}` : `exit code ${code}`}`;
      this.log(`Worker process ${slot.index} (${slot.address ?? 'not yet registered'}) ${why}; restarting in ${slot.restartDelayMs} ms`);
      slot.restartTimer = setTimeout(() => this.spawn(slot), slot.restartDelayMs);
    });
    if (this.settings.lifetimeMs !== undefined && slot.lifetimeTimer === undefined) {
      slot.lifetimeTimer = setTimeout(() => {
        this.log(`Worker process ${slot.index} reached its lifetime; closing it`);
        void this.stopSlot(slot);
      }, this.settings.lifetimeMs);
      slot.lifetimeTimer.unref();
    }
  }

  /** A slot whose process exited for good: not restarted; the supervisor is done once all are. */
  private endSlot(slot: Slot, why: string): void {
    this.log(`Worker process ${slot.index} ${why}; not restarting it`);
    slot.stopping = true;
    clearTimeout(slot.lifetimeTimer);
    if (this.slots.every((s) => s.stopping && !this.isAlive(s))) this.resolveDone();
  }

  private stopSlot(slot: Slot, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.stopChild(slot, false, signal).then(() => {
      if (this.slots.every((s) => s.stopping && !this.isAlive(s))) this.resolveDone();
    });
  }

  private isAlive(slot: Slot): boolean {
    return slot.child !== undefined && slot.child.exitCode === null && slot.child.signalCode === null;
  }

  /** Asks the child to close (IPC, else `signal`), kills it after closeTimeoutMs. */
  private stopChild(slot: Slot, forRestart: boolean, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    slot.stopping = true;
    clearTimeout(slot.restartTimer);
    if (!forRestart) clearTimeout(slot.lifetimeTimer);
    const child = slot.child;
    if (!child || !this.isAlive(slot)) return Promise.resolve();
    return new Promise((resolve) => {
      const killTimer = setTimeout(() => child.kill('SIGKILL'), this.settings.closeTimeoutMs);
      child.once('exit', () => {
        clearTimeout(killTimer);
        resolve();
      });
      if (child.connected) child.send({ type: 'close' }, (err) => { if (err) child.kill(signal); });
      else child.kill(signal);
    });
  }
}
