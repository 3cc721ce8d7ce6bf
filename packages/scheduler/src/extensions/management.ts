// Managing the cluster from a client (the reference's Client.run, get_versions, shutdown,
// replicate, rebalance, retire_workers). Data moves with the workers' own machinery: the
// scheduler sends `acquire-replicas` (the worker fetches from the listed holders and answers
// add-keys) and `remove-replicas` (the worker drops its copy and answers release-worker-data),
// then waits, by observing stimuli, until the state machine shows the result. Nothing here
// changes task state directly.

import type { Address, Key, WireError } from '@dd/protocol';
import { DdError } from '@dd/protocol';
import type { TaskState, WorkerState } from '../state-types';
import type { ClusterHost } from './cluster-host';
import { ExtensionKeyError, strList, type ExtensionMsg, type SchedulerExtension } from './extension';

/** A management operation did not reach its goal in time (data not moved, worker not gone). */
export class ManagementTimeoutError extends DdError {
  override readonly code: string = 'DD_ERR_TIMEOUT';
}

/** A management operation cannot be done (e.g. no worker left to take the data). */
export class ManagementError extends DdError {
  override readonly code: string = 'DD_ERR_MANAGEMENT';
}

/** One worker's answer to `run`: the function's result, or what went wrong there. */
export type RunReply = { status: 'OK'; result: unknown } | { status: 'error'; exception: WireError };

export interface ManagementOptions {
  /** Default bound on waiting for data to move or workers to leave, ms (default 30 000). */
  timeoutMs?: number;
  /** How long a closing worker gets before it is removed anyway, ms (default 10 000). */
  closeTimeoutMs?: number;
}

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

const DD_VERSION = (require('../../package.json') as { version: string }).version;

export function schedulerVersions(): Record<string, string> {
  return { dd: DD_VERSION, node: process.versions.node, v8: process.versions.v8, platform: process.platform, arch: process.arch };
}

export class ManagementExtension implements SchedulerExtension {
  readonly name = 'management';
  private readonly waiters = new Set<Waiter>();
  private readonly timeoutMs: number;
  private readonly closeTimeoutMs: number;
  private closed = false;

  constructor(
    private readonly host: ClusterHost,
    options: ManagementOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    host.addObserver({
      onStimuli: () => this.wake(),
      onClose: () => {
        this.closed = true;
        this.wake();
      },
    });
  }

  readonly handlers = {
    run: (m: ExtensionMsg) => this.run(m),
    'get-versions': () => this.versions(),
    shutdown: () => this.shutdown(),
    replicate: (m: ExtensionMsg) => this.replicate(m),
    rebalance: (m: ExtensionMsg) => this.rebalance(m),
    'retire-workers': (m: ExtensionMsg) => this.retireWorkers(m),
  };

  // -------------------------------------------------------------------------------------------
  // run, versions, shutdown

  /** `{spec, workers?, timeoutMs?}` -> `{ [address]: RunReply }`: the worker's `run` op on each. */
  private async run(m: ExtensionMsg): Promise<Record<Address, RunReply>> {
    const spec = m['spec'];
    if (typeof spec !== 'object' || spec === null) throw new TypeError('run: field "spec" must be a run spec');
    const workers = this.resolveWorkers(m['workers'], 'run');
    const timeoutMs = optNumber(m, 'timeoutMs', 'run');
    const out: Record<Address, RunReply> = {};
    await Promise.all(
      workers.map(async (ws) => {
        try {
          const reply = await this.host.callWorker<RunReply>(ws.address, 'run', { spec }, timeoutMs);
          out[ws.address] = isRunReply(reply) ? reply : { status: 'error', exception: { name: 'Error', message: `worker ${ws.address} sent a malformed run reply` } };
        } catch (err) {
          out[ws.address] = { status: 'error', exception: toWire(err) };
        }
      }),
    );
    return out;
  }

  private async versions(): Promise<{ scheduler: Record<string, string>; workers: Record<Address, unknown> }> {
    const workers: Record<Address, unknown> = {};
    await Promise.all(
      [...this.host.state.workers.keys()].map(async (a) => {
        try {
          workers[a] = await this.host.callWorker(a, 'versions', {}, 10_000);
        } catch (err) {
          workers[a] = { error: toWire(err) };
        }
      }),
    );
    return { scheduler: schedulerVersions(), workers };
  }

  /** Asks every worker to close, waits (bounded) for them to leave, answers, then closes the scheduler. */
  private async shutdown(): Promise<null> {
    const addresses = [...this.host.state.workers.keys()];
    this.host.logger.info(`shutdown requested: closing ${addresses.length} workers and the scheduler`);
    for (const a of addresses) this.host.closeWorker(a, 'scheduler shutdown');
    await this.until(() => addresses.every((a) => !this.host.state.workers.has(a)), this.closeTimeoutMs, 'workers to close').catch(() => undefined);
    this.host.closeScheduler();
    return null;
  }

  // -------------------------------------------------------------------------------------------
  // replicate

  /**
   * `{keys, n?, workers?, timeoutMs?}`: each key ends up on `n` of the candidate workers (default
   * all of them): missing copies are fetched by the least loaded candidates, and with `n` given
   * extra copies on candidates are dropped (the most loaded first). Keys must be in memory.
   */
  private async replicate(m: ExtensionMsg): Promise<{ added: number; removed: number }> {
    const op = 'replicate';
    const keys = strList(m, 'keys', op);
    const n = optNumber(m, 'n', op);
    if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new TypeError('replicate: n must be a positive integer');
    const candidates = this.resolveWorkers(m['workers'], op).filter((ws) => ws.status !== 'closing');
    if (candidates.length === 0) throw new ManagementError('replicate: no workers to replicate to');
    const timeoutMs = optNumber(m, 'timeoutMs', op) ?? this.timeoutMs;
    const tasks = this.inMemory(keys, op);
    const planned = new Map<WorkerState, number>(candidates.map((ws) => [ws, ws.nbytes]));
    const acquire = new Map<WorkerState, TaskState[]>();
    const remove = new Map<WorkerState, TaskState[]>();
    const want = Math.min(n ?? candidates.length, candidates.length);
    for (const ts of tasks) {
      const have = candidates.filter((ws) => ts.whoHas.has(ws));
      if (have.length < want) {
        const free = candidates.filter((ws) => !ts.whoHas.has(ws)).sort((a, b) => planned.get(a)! - planned.get(b)!);
        for (const ws of free.slice(0, want - have.length)) {
          push(acquire, ws, ts);
          planned.set(ws, planned.get(ws)! + Math.max(0, ts.nbytes));
        }
      } else if (n !== undefined && have.length > want) {
        const extra = have.sort((a, b) => planned.get(b)! - planned.get(a)!).slice(0, have.length - want);
        // Never the last copy anywhere.
        for (const ws of extra.slice(0, ts.whoHas.size - 1)) push(remove, ws, ts);
      }
    }
    await this.acquire(acquire, timeoutMs, 'replicate');
    await this.removeReplicas(remove, 'replicate');
    return { added: count(acquire), removed: count(remove) };
  }

  // -------------------------------------------------------------------------------------------
  // rebalance

  /**
   * `{keys?, workers?, timeoutMs?}`: evens out the bytes of the keys (default: all data) across
   * the workers (default: all). Workers above the average hand their largest keys to the
   * least loaded workers while a move narrows the gap; a moved key is fetched by its recipient
   * first and dropped by its sender after.
   */
  private async rebalance(m: ExtensionMsg): Promise<{ moved: number }> {
    const op = 'rebalance';
    const workers = this.resolveWorkers(m['workers'], op).filter((ws) => ws.status !== 'closing');
    const timeoutMs = optNumber(m, 'timeoutMs', op) ?? this.timeoutMs;
    const keySet = m['keys'] === undefined || m['keys'] === null ? undefined : new Set(this.inMemory(strList(m, 'keys', op), op));
    if (workers.length < 2) return { moved: 0 };
    const counted = (ts: TaskState) => ts.state === 'memory' && (keySet === undefined || keySet.has(ts));
    const bytes = new Map<WorkerState, number>();
    let total = 0;
    for (const ws of workers) {
      let b = 0;
      for (const ts of ws.hasWhat) if (counted(ts)) b += Math.max(0, ts.nbytes);
      bytes.set(ws, b);
      total += b;
    }
    const avg = total / workers.length;
    const acquire = new Map<WorkerState, TaskState[]>();
    const senders = new Map<TaskState, WorkerState>();
    const remove = new Map<WorkerState, TaskState[]>();
    const moving = new Set<TaskState>();
    for (const sender of [...workers].sort((a, b) => bytes.get(b)! - bytes.get(a)!)) {
      if (bytes.get(sender)! <= avg) break;
      const mine = [...sender.hasWhat].filter((ts) => counted(ts) && !moving.has(ts)).sort((a, b) => b.nbytes - a.nbytes);
      for (const ts of mine) {
        if (bytes.get(sender)! <= avg) break;
        const nb = Math.max(0, ts.nbytes);
        let to: WorkerState | undefined;
        for (const ws of workers) {
          if (ws === sender || ts.whoHas.has(ws)) continue;
          if (to === undefined || bytes.get(ws)! < bytes.get(to)!) to = ws;
        }
        // A move helps only if it narrows the gap between the two.
        if (to === undefined || bytes.get(sender)! - bytes.get(to)! <= nb) continue;
        bytes.set(sender, bytes.get(sender)! - nb);
        bytes.set(to, bytes.get(to)! + nb);
        moving.add(ts);
        push(acquire, to, ts);
        senders.set(ts, sender);
      }
    }
    await this.acquire(acquire, timeoutMs, 'rebalance', (ts) => [senders.get(ts)!]);
    for (const [ts, sender] of senders) {
      if (ts.state === 'memory' && ts.whoHas.size > 1 && ts.whoHas.has(sender)) push(remove, sender, ts);
    }
    await this.removeReplicas(remove, 'rebalance');
    return { moved: moving.size };
  }

  // -------------------------------------------------------------------------------------------
  // retire-workers

  /**
   * `{workers, timeoutMs?}`: the workers get no new tasks; every key whose only copies are on
   * them is fetched by another worker (the least loaded); then they are asked to close, as a
   * clean departure. Answers `{ [address]: name }` of the retired workers.
   */
  private async retireWorkers(m: ExtensionMsg): Promise<Record<Address, string>> {
    const op = 'retire-workers';
    const retiring = this.resolveWorkers(m['workers'], op, false);
    const timeoutMs = optNumber(m, 'timeoutMs', op) ?? this.timeoutMs;
    const leaving = new Set(retiring);
    const paused: WorkerState[] = [];
    for (const ws of retiring) {
      if (ws.status === 'running') {
        paused.push(ws);
        this.host.feed({ kind: 'worker-paused', worker: ws.address, stimulusId: this.host.sid('retire-workers') });
      }
    }
    try {
      // Tasks still finishing there may make new data: move until nothing unique is left.
      for (let round = 0; ; round++) {
        const remaining = [...this.host.state.workers.values()].filter((ws) => !leaving.has(ws) && ws.status !== 'closing');
        const unique = new Set<TaskState>();
        for (const ws of retiring) {
          for (const ts of ws.hasWhat) if (ts.state === 'memory' && [...ts.whoHas].every((h) => leaving.has(h))) unique.add(ts);
        }
        if (unique.size === 0) break;
        if (remaining.length === 0) {
          throw new ManagementError(`retire-workers: ${unique.size} keys exist only on the retiring workers and no other worker can take them`);
        }
        if (round >= 5) throw new ManagementError(`retire-workers: the retiring workers keep making unique data (${unique.size} keys)`);
        const planned = new Map<WorkerState, number>(remaining.map((ws) => [ws, ws.nbytes]));
        const acquire = new Map<WorkerState, TaskState[]>();
        for (const ts of [...unique].sort((a, b) => b.nbytes - a.nbytes)) {
          let to = remaining[0]!;
          for (const ws of remaining) if (planned.get(ws)! < planned.get(to)!) to = ws;
          push(acquire, to, ts);
          planned.set(to, planned.get(to)! + Math.max(0, ts.nbytes));
        }
        await this.acquire(acquire, timeoutMs, 'retire-workers', undefined, (ts) => [...ts.whoHas].some((h) => !leaving.has(h)));
      }
    } catch (err) {
      for (const ws of paused) {
        if (this.host.state.workers.get(ws.address) === ws) {
          this.host.feed({ kind: 'worker-resumed', worker: ws.address, stimulusId: this.host.sid('retire-workers-failed') });
        }
      }
      throw err;
    }
    const out: Record<Address, string> = {};
    for (const ws of retiring) {
      out[ws.address] = ws.name;
      this.host.closeWorker(ws.address, 'retired');
    }
    const gone = () => retiring.every((ws) => this.host.state.workers.get(ws.address) !== ws);
    try {
      await this.until(gone, this.closeTimeoutMs, 'retired workers to close');
    } catch {
      // A worker that does not close in time is removed anyway (its data was moved).
      for (const ws of retiring) {
        if (this.host.state.workers.get(ws.address) === ws) {
          this.host.logger.warn(`retire-workers: ${ws.address} did not close within ${this.closeTimeoutMs} ms; removing it`);
          this.host.feed({ kind: 'remove-worker', address: ws.address, safe: true, stimulusId: this.host.sid('retire-workers') });
        }
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Moving data

  /**
   * Sends acquire-replicas (per worker: its keys and where to fetch them, by default every
   * current holder) and waits until each key is on its worker, the worker is gone, or the key
   * left memory; `done(ts)` may accept a key earlier.
   */
  private async acquire(
    plan: Map<WorkerState, TaskState[]>,
    timeoutMs: number,
    op: string,
    sources?: (ts: TaskState) => WorkerState[],
    done?: (ts: TaskState) => boolean,
  ): Promise<void> {
    if (plan.size === 0) return;
    const sid = this.host.sid(op);
    for (const [ws, tss] of plan) {
      const whoHas: Record<Key, Address[]> = {};
      const nbytes: Record<Key, number> = {};
      for (const ts of tss) {
        whoHas[ts.key] = (sources?.(ts) ?? [...ts.whoHas]).map((h) => h.address);
        if (ts.nbytes >= 0) nbytes[ts.key] = ts.nbytes;
      }
      this.host.sendWorker(ws.address, { op: 'acquire-replicas', whoHas, nbytes, stimulusId: sid });
    }
    const state = this.host.state;
    const settled = () => {
      for (const [ws, tss] of plan) {
        if (state.workers.get(ws.address) !== ws) continue;
        for (const ts of tss) {
          if (state.tasks.get(ts.key) !== ts || ts.state !== 'memory' || ts.whoHas.has(ws)) continue;
          if (done?.(ts) === true) continue;
          return false;
        }
      }
      return true;
    };
    await this.until(settled, timeoutMs, `${op}: replicas to arrive`);
    // A recipient that left took its new copies along: the caller's next check sees that.
  }

  /** Sends remove-replicas and waits (briefly, without failing) for the copies to go. */
  private async removeReplicas(plan: Map<WorkerState, TaskState[]>, op: string): Promise<void> {
    if (plan.size === 0) return;
    const sid = this.host.sid(op);
    for (const [ws, tss] of plan) this.host.sendWorker(ws.address, { op: 'remove-replicas', keys: tss.map((t) => t.key), stimulusId: sid });
    const state = this.host.state;
    const settled = () => {
      for (const [ws, tss] of plan) {
        if (state.workers.get(ws.address) !== ws) continue;
        for (const ts of tss) if (ts.whoHas.has(ws) && ts.state === 'memory') return false;
      }
      return true;
    };
    // A worker keeps a copy its running tasks still need (it says so with add-keys): not an error.
    await this.until(settled, Math.min(this.timeoutMs, 5000), `${op}: replicas to be dropped`).catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  /** Resolves when `check()` holds, re-checked after every batch of stimuli; rejects after timeoutMs. */
  private until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.closed) return Promise.reject(new ManagementError(`scheduler closing while waiting for ${what}`));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          if (this.closed && !check()) reject(new ManagementError(`scheduler closing while waiting for ${what}`));
          else resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new ManagementTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      timer.unref?.();
      this.waiters.add(waiter);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      let ok: boolean;
      try {
        ok = this.closed || w.check();
      } catch (err) {
        this.host.logger.error('management: a wait condition failed', err);
        ok = true;
      }
      if (ok) w.resolve();
    }
  }

  /** Workers by address or name (`undefined`: all of them, if `allowAll`). */
  private resolveWorkers(value: unknown, op: string, allowAll = true): WorkerState[] {
    const state = this.host.state;
    if (value === undefined || value === null) {
      if (!allowAll) throw new TypeError(`${op}: field "workers" is required`);
      return [...state.workers.values()];
    }
    if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) {
      throw new TypeError(`${op}: field "workers" must be an array of worker addresses or names`);
    }
    const out: WorkerState[] = [];
    for (const w of value as string[]) {
      let ws = state.workers.get(w);
      if (ws === undefined) for (const c of state.workers.values()) if (c.name === w) ws = c;
      if (ws === undefined) throw new ExtensionKeyError(`${op}: no worker ${JSON.stringify(w)} (by address or name)`);
      if (!out.includes(ws)) out.push(ws);
    }
    return out;
  }

  private inMemory(keys: Key[], op: string): TaskState[] {
    const out: TaskState[] = [];
    for (const key of new Set(keys)) {
      const ts = this.host.state.tasks.get(key);
      if (ts === undefined || ts.state !== 'memory') {
        throw new ExtensionKeyError(`${op}: key ${JSON.stringify(key)} has no data in memory (${ts === undefined ? 'unknown key' : ts.state})`);
      }
      out.push(ts);
    }
    return out;
  }
}

function push<K, V>(map: Map<K, V[]>, k: K, v: V): void {
  const list = map.get(k);
  if (list === undefined) map.set(k, [v]);
  else list.push(v);
}

function count(map: Map<unknown, unknown[]>): number {
  let n = 0;
  for (const l of map.values()) n += l.length;
  return n;
}

function optNumber(m: ExtensionMsg, field: string, op: string): number | undefined {
  const v = m[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${op}: field "${field}" must be a number`);
  return v;
}

function isRunReply(v: unknown): v is RunReply {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return r['status'] === 'OK' || (r['status'] === 'error' && typeof r['exception'] === 'object' && r['exception'] !== null);
}

/** A local failure (unreachable worker, timeout) in wire form. */
function toWire(err: unknown): WireError {
  const e = err as Error & { code?: string; remoteName?: string; remoteMessage?: string; remoteStack?: string };
  const out: WireError = { name: e?.remoteName ?? e?.name ?? 'Error', message: e?.remoteMessage ?? e?.message ?? String(err) };
  const stack = e?.remoteStack ?? e?.stack;
  if (typeof stack === 'string') out.stack = stack;
  if (typeof e?.code === 'string') out.code = e.code;
  return out;
}
