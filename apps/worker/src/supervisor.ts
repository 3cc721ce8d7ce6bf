// Runs worker processes and keeps them running: a worker process that exits without being
// asked to is started again (with a growing delay if it keeps dying), so one crash does not
// shrink the cluster. Each child is @dd/worker's process entry, given its options as JSON.

import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { EventEmitter } from 'node:events';
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
  restartTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
}

export function workerProcessEntry(): string {
  return join(dirname(require.resolve('@dd/worker/package.json')), 'dist', 'process-main.js');
}

/** Emits 'ready' (index, address) each time a worker process registers, 'exit' (index, code, signal). */
export class WorkerSupervisor extends EventEmitter {
  private readonly slots: Slot[];
  private readonly entry: string;
  private readonly settings: Required<Omit<SupervisorOptions, 'lifetimeMs' | 'entry' | 'log'>> & Pick<SupervisorOptions, 'lifetimeMs'>;
  private readonly log: (line: string) => void;
  private closing?: Promise<void>;
  private resolveDone!: () => void;
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
      lifetimeMs: options.lifetimeMs,
    };
    this.slots = workers.map((w, index) => ({ index, options: w, startedAt: 0, restartDelayMs: this.settings.restartDelayMs, stopping: false }));
  }

  /** Worker processes currently alive, by slot. */
  get pids(): number[] {
    return this.slots.flatMap((s) => (this.isAlive(s) && s.child!.pid !== undefined ? [s.child!.pid] : []));
  }

  start(): void {
    for (const slot of this.slots) this.spawn(slot);
  }

  /** Resolves once every worker process has exited (killed after closeTimeoutMs). Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.slots.map((s) => this.stopSlot(s))).then(() => undefined);
    return this.closing;
  }

  private spawn(slot: Slot): void {
    slot.startedAt = Date.now();
    slot.address = undefined;
    const child = fork(this.entry, [JSON.stringify(slot.options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    slot.child = child;
    child.on('message', (msg: { type?: string; address?: string; dashboard?: string }) => {
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
      if (slot.stopping || this.closing) return;
      const ranMs = Date.now() - slot.startedAt;
      slot.restartDelayMs = ranMs > this.settings.stableAfterMs
        ? this.settings.restartDelayMs
        : Math.min(slot.restartDelayMs * 2, this.settings.maxRestartDelayMs);
      const why = signal ? `signal ${signal}` : `exit code ${code}`;
      this.log(`Worker process ${slot.index} (${slot.address ?? 'not yet registered'}) died with ${why}; restarting in ${slot.restartDelayMs} ms`);
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

  private stopSlot(slot: Slot): Promise<void> {
    return this.stopChild(slot).then(() => {
      if (this.slots.every((s) => s.stopping && !this.isAlive(s))) this.resolveDone();
    });
  }

  private isAlive(slot: Slot): boolean {
    return slot.child !== undefined && slot.child.exitCode === null && slot.child.signalCode === null;
  }

  private stopChild(slot: Slot): Promise<void> {
    slot.stopping = true;
    clearTimeout(slot.restartTimer);
    clearTimeout(slot.lifetimeTimer);
    const child = slot.child;
    if (!child || !this.isAlive(slot)) return Promise.resolve();
    return new Promise((resolve) => {
      const killTimer = setTimeout(() => child.kill('SIGKILL'), this.settings.closeTimeoutMs);
      child.once('exit', () => {
        clearTimeout(killTimer);
        resolve();
      });
      if (child.connected) child.send({ type: 'close' }, (err) => { if (err) child.kill('SIGTERM'); });
      else child.kill('SIGTERM');
    });
  }
}
