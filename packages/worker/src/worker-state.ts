// WorkerState: the worker's state machine, without I/O (the reference's "Worker" chapter and
// dask's worker_state_machine.py). Events go in through `handleStimulus(...events)`, and
// instructions come out (run a task, fetch keys from a peer, send a message to the scheduler).
// No sockets, no timers, no @dd/comm: the Worker shell owns those and feeds the outcome of
// every async job back in as the next event.
//
// Task states
//   released     known, nothing to do (about to be forgotten unless a dependent still needs it)
//   waiting      to compute here; some dependencies are not in memory yet
//   ready        to compute here; all dependencies in memory; in the ready heap
//   constrained  like ready, but needs resources (e.g. {GPU: 1}); in the constrained heap
//   executing    handed to the executor (at most executeSlots at a time: nthreads, or a few per
//                thread when the executor queues tasks per thread)
//   fetch        a dependency to fetch from a peer that holds it; in the fetch heaps
//   missing      a dependency that no known peer holds (the scheduler was told)
//   flight       being fetched by a `gather-dep` request
//   memory       the value is in the data store
//   error        the task threw
//   cancelled    released while a job (execution or fetch, `previous`) was still running; the
//                job's result will be dropped
//   resumed      cancelled, then wanted again in the other role (`next`: compute it / fetch it)
//                while the old job still runs; its result is used if it succeeds
//   forgotten    removed from `tasks`
//
// Every state change goes through `transition(ts, finish)`, which looks up `'from->to'` in
// TRANSITIONS; a pair that is not there goes through `released` when both halves exist, and is
// otherwise an InvalidTransitionError carrying the key's story.

import { TransitionLog, clearIfAny, isInlineValue, keySplit, ownSet, sharedEmptySet, type Address, type InlineValue, type Key, type StartStop, type StimulusId, type StoryEntry, type WireError, type WireRunSpec } from '@dd/protocol';
import { MemoryStore, type DataStore } from './data-store';
import { InvalidTransitionError, InvalidWorkerStateError, TransitionCounterMaxExceededError } from './errors';
import type {
  AcquireReplicasEvent,
  ComputeTaskEvent,
  FreeKeysEvent,
  GatherDepSuccessEvent,
  Instruction,
  RemoveReplicasEvent,
  StealRequestEvent,
  SendToScheduler,
  UpdateDataEvent,
  WorkerEvent,
} from './events';
import { Heap, comparePriority } from './heap';
import { typeName } from './type-name';

/** Shared by every task finished without transfers or disk activity to report (no allocation). */
const NO_STARTSTOPS: readonly StartStop[] = Object.freeze([]);

export const TASK_STATES = [
  'released',
  'waiting',
  'ready',
  'constrained',
  'executing',
  'fetch',
  'missing',
  'flight',
  'memory',
  'error',
  'cancelled',
  'resumed',
  'forgotten',
] as const;
export type TaskStateName = (typeof TASK_STATES)[number];

/**
 * Beyond nthreads (up to executeSlots), a task is handed to the executor only if it and every
 * task already there are expected to take at most this long: a task queued in a thread waits
 * for the ones ahead of it, so only tiny tasks may queue (a higher-priority task arriving later
 * then waits a few ms at most, not behind a long task).
 */
const QUEUE_BEHIND_MAX_MS = 2;

/**
 * And the tasks in the executor together are expected to take at most this long, so a deep
 * queue (executorQueueDepth) fills only with tasks far below QUEUE_BEHIND_MAX_MS: the wait of a
 * task arriving later stays what 4 slots of 2 ms tasks gave.
 */
const QUEUED_WORK_MAX_MS = 8;

/**
 * And the dependencies of the tasks in the executor (running and queued) together hold at most
 * this many bytes: a thread gets its own copy of each dependency value with the job, so a deep
 * queue of tiny tasks on large values (a check over 8 MiB buffers) would otherwise hold dozens of
 * copies at once and push the worker past its memory limit.
 */
const QUEUED_DEPENDENCY_BYTES_MAX = 32 * 2 ** 20;

/** Priority of replicas asked for by `acquire-replicas`: after every task's dependencies. */
const REPLICA_PRIORITY: readonly number[] = [Number.MAX_SAFE_INTEGER];

export class WorkerTask {
  state: TaskStateName = 'released';
  /** Run spec when the scheduler asked this worker to compute the task; null for pure dependencies. */
  spec: WireRunSpec | null = null;
  priority: readonly number[] | null = null;
  /** Arrival order, to break priority ties last-in-first-out. */
  arrival = 0;
  // These sets start as one shared empty set and get their own on the first add (add* below):
  // for most tasks they stay empty, and four fresh Sets per task were a good part of the
  // worker's garbage. Read-only outside add*.
  dependencies: Set<WorkerTask> = sharedEmptySet();
  dependents: Set<WorkerTask> = sharedEmptySet();
  /** Dependencies not yet in memory (only while waiting). */
  waitingForData: Set<WorkerTask> = sharedEmptySet();
  /** Peers believed to hold the data (never this worker). */
  whoHas: Set<Address> = sharedEmptySet();
  comingFrom: Address | null = null;
  nbytes: number | null = null;
  resources: Record<string, number> | null = null;
  duration: number | null = null;
  annotations: Record<string, unknown> | null = null;
  exception: WireError | null = null;
  valueType: string | null = null;
  startstops: StartStop[] = [];
  /** For cancelled/resumed: the job still running. */
  previous: 'executing' | 'flight' | null = null;
  /** For resumed: what the task is wanted as once the job ends. */
  next: 'waiting' | 'fetch' | null = null;
  /** Fetched because the scheduler asked for a replica: kept without dependents. */
  replica = false;
  /** Bumped whenever the task leaves (or re-enters) a queue; older heap entries are stale. */
  queueSeq = 0;
  /** Freed by the scheduler while local dependents still needed it: release when they are done. */
  freed = false;
  /** Resources held by the running execution (released when it ends). */
  heldResources: Record<string, number> | null = null;
  /** Expected run time (ms) when its execution job started: what it counts for in mayQueueBehind. */
  expectedMsAtStart = 0;
  /** Bytes of its dependencies, once asked for (mayQueueBehind); counted while it executes. */
  dependencyBytes: number | null = null;
  /** A value waiting to be put in memory by the next `* -> memory` transition. */
  pendingValue: { value: unknown; nbytes: number | undefined; type: string | undefined } | null = null;

  /** keySplit(key), once: a fresh slice per lookup cost a copy and a hash each time. */
  private prefixCache: string | null = null;

  constructor(readonly key: Key) {}

  /**
   * The kind of task, for duration estimates: the scheduler's prefix (`inc-3f2a...` -> `inc`,
   * `["g", 0, 5]` -> `g`). Cutting at the last '-' made every tuple key a prefix of its own.
   */
  get prefix(): string {
    return (this.prefixCache ??= keySplit(this.key));
  }

  addDependency(ts: WorkerTask): void {
    (this.dependencies = ownSet(this.dependencies)).add(ts);
  }
  addDependent(ts: WorkerTask): void {
    (this.dependents = ownSet(this.dependents)).add(ts);
  }
  addWaitingForData(ts: WorkerTask): void {
    (this.waitingForData = ownSet(this.waitingForData)).add(ts);
  }
  addHolder(address: Address): void {
    (this.whoHas = ownSet(this.whoHas)).add(address);
  }
}

interface QueueEntry {
  ts: WorkerTask;
  seq: number;
  priority: readonly number[];
  arrival: number;
}

/** Ready/constrained order: priority, then last-in-first-out among equals (as the reference). */
function entryLess(a: QueueEntry, b: QueueEntry): boolean {
  const c = comparePriority(a.priority, b.priority);
  if (c !== 0) return c < 0;
  return a.arrival > b.arrival;
}

/** Fetch order: priority, then first-in-first-out (dependencies in the order they were listed). */
function fetchLess(a: QueueEntry, b: QueueEntry): boolean {
  const c = comparePriority(a.priority, b.priority);
  if (c !== 0) return c < 0;
  return a.arrival < b.arrival;
}

export interface WorkerStateOptions {
  /** This worker's address (excluded from every who_has). */
  address: Address;
  nthreads: number;
  /**
   * Most tasks handed to the executor at once. Default nthreads. A thread-pool executor that
   * keeps a short queue per thread takes more (nthreads x depth), so a thread goes from one tiny
   * task to the next without waiting for the main thread in between. The slots beyond nthreads
   * are used only for tasks expected to be tiny (QUEUE_BEHIND_MAX_MS), by durations measured here
   * per key prefix.
   */
  executeSlots?: number;
  /** Resources this worker offers, e.g. {GPU: 2}. */
  resources?: Record<string, number>;
  data?: DataStore;
  /** Most peers fetched from at once. Default 10. */
  transferIncomingCountLimit?: number;
  /** Most bytes in flight at once; a single request is always allowed. Default 50 MiB. */
  transferIncomingBytesLimit?: number;
  /** Most bytes asked for in one request to a peer (at least one key). Default 50 MiB. */
  transferMessageBytesLimit?: number;
  /** Size assumed for data whose nbytes the scheduler did not say. Default 1 KiB. */
  defaultDataSize?: number;
  /** Check every invariant after each stimulus (on in tests). */
  validate?: boolean;
  /** Entries kept in the story log. Default 100_000. */
  storyLimit?: number;
  /** Clock for story timestamps (ms). */
  now?: () => number;
}

type Recs = Map<WorkerTask, TaskStateName>;
type TransitionFn = (this: WorkerState, ts: WorkerTask, stimulusId: StimulusId, recs: Recs, out: Instruction[]) => void;

const MAX_TRANSITIONS_PER_STIMULUS = 1_000_000;

export class WorkerState {
  readonly address: Address;
  readonly nthreads: number;
  readonly executeSlots: number;
  readonly totalResources: Readonly<Record<string, number>>;
  readonly availableResources: Record<string, number>;
  readonly data: DataStore;
  readonly tasks = new Map<Key, WorkerTask>();
  /** Tasks whose execution job is running (includes cancelled/resumed ones: their thread is busy). */
  readonly executing = new Set<WorkerTask>();
  // mayQueueBehind's view of `executing`, kept as tasks start and end (a loop over a deep
  // executor queue for every task started cost O(depth) each): the jobs expected to take more
  // than QUEUE_BEHIND_MAX_MS (or unknown), and the expected milliseconds of the others.
  private executingLong = 0;
  private executingTinyMs = 0;
  private executingDependencyBytes = 0;
  /** Open `gather-dep` requests: peer -> the tasks asked from it. */
  readonly inFlightWorkers = new Map<Address, Set<WorkerTask>>();
  /** Bytes of the open gather-dep requests, by peer. */
  private readonly inFlightBytes = new Map<Address, number>();
  bytesInFlight = 0;
  /** Peers that answered busy and are in their backoff. */
  readonly busyWorkers = new Set<Address>();
  /** Peer -> the tasks it is believed to hold (the inverse of whoHas). */
  readonly hasWhat = new Map<Address, Set<WorkerTask>>();
  paused = false;
  readonly validate: boolean;
  readonly transferIncomingCountLimit: number;
  readonly transferIncomingBytesLimit: number;
  readonly transferMessageBytesLimit: number;
  readonly defaultDataSize: number;
  /** Number of tasks in each state. */
  readonly stateCounts: Record<TaskStateName, number>;
  transitionCounter = 0;
  /** Called after every transition (worker plugins); null when nobody listens. Must not throw. */
  transitionHook: ((key: Key, start: string, finish: string, stimulusId: StimulusId) => void) | null = null;

  private readonly ready = new Heap<QueueEntry>(entryLess);
  private readonly constrained = new Heap<QueueEntry>(entryLess);
  /** Every task in fetch, by priority. */
  private readonly fetchQueue = new Heap<QueueEntry>(fetchLess);
  /** Per peer, the fetch tasks it holds, by priority (to batch several keys per request). */
  private readonly dataNeeded = new Map<Address, Heap<QueueEntry>>();
  private arrivalCounter = 0;
  private readonly host: string;
  private readonly storyLimit: number;
  private readonly log: TransitionLog;
  private readonly recordScratch: string[] = [];
  private readonly now: () => number;
  /** Average execution time per key prefix measured on this worker, ms. */
  private readonly prefixDurations = new Map<string, number>();
  /** Keys that reached memory from a peer during the current stimulus (one add-keys per stimulus). */
  private addKeys: WorkerTask[] = [];
  /** Scratch recommendations of the transition in progress (see transition()). */
  private readonly localRecs: Recs = new Map();

  constructor(options: WorkerStateOptions) {
    this.address = options.address;
    this.nthreads = options.nthreads;
    this.executeSlots = Math.max(options.nthreads, options.executeSlots ?? options.nthreads);
    this.totalResources = { ...(options.resources ?? {}) };
    this.availableResources = { ...(options.resources ?? {}) };
    this.data = options.data ?? new MemoryStore();
    this.transferIncomingCountLimit = options.transferIncomingCountLimit ?? 10;
    this.transferIncomingBytesLimit = options.transferIncomingBytesLimit ?? 50 * 2 ** 20;
    this.transferMessageBytesLimit = options.transferMessageBytesLimit ?? 50 * 2 ** 20;
    this.defaultDataSize = options.defaultDataSize ?? 1024;
    this.validate = options.validate ?? false;
    this.storyLimit = options.storyLimit ?? 100_000;
    this.log = new TransitionLog(Math.max(1, this.storyLimit));
    this.now = options.now ?? Date.now;
    this.host = hostOf(options.address);
    this.stateCounts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskStateName, number>;
  }

  // ----------------------------------------------------------------------------------------
  // Entry point

  /** Applies events in order and returns the instructions they produce. */
  handleStimulus(...events: WorkerEvent[]): Instruction[] {
    return this.handleEvents(events);
  }

  /** handleStimulus for a list of events (any number: no spreading into arguments). */
  handleEvents(events: readonly WorkerEvent[]): Instruction[] {
    const out: Instruction[] = [];
    for (const ev of events) {
      this.transitionCounter = 0;
      const recs: Recs = new Map();
      this.handleEvent(ev, recs, out);
      this.runTransitions(recs, ev.stimulusId, out);
      this.ensureComputing(ev.stimulusId, out);
      this.ensureCommunicating(ev.stimulusId, out);
      if (this.addKeys.length > 0) {
        const keys: Key[] = [];
        const nbytes: Record<Key, number> = {};
        for (const ts of this.addKeys) {
          if (ts.state !== 'memory') continue;
          keys.push(ts.key);
          nbytes[ts.key] = ts.nbytes ?? this.defaultDataSize;
        }
        this.addKeys = [];
        if (keys.length > 0) out.push({ type: 'send-to-scheduler', msg: { op: 'add-keys', keys, nbytes, stimulusId: ev.stimulusId } });
      }
      if (this.validate) this.validateState();
    }
    return out;
  }

  private handleEvent(ev: WorkerEvent, recs: Recs, out: Instruction[]): void {
    switch (ev.type) {
      case 'compute-task':
        return this.handleComputeTask(ev, recs, out);
      case 'free-keys':
        return this.handleFreeKeys(ev, recs);
      case 'acquire-replicas':
        return this.handleAcquireReplicas(ev, recs);
      case 'remove-replicas':
        return this.handleRemoveReplicas(ev, recs, out);
      case 'steal-request':
        return this.handleStealRequest(ev, recs, out);
      case 'execute-success': {
        const ts = this.executingJob(ev.key);
        if (!ts) return this.logEvent(ev.key, 'execute-success-ignored', ev.stimulusId);
        this.endExecution(ts);
        this.recordDuration(ts, ev.start, ev.stop);
        ts.startstops.push({ action: 'compute', start: ev.start, stop: ev.stop });
        ts.pendingValue = { value: ev.value, nbytes: ev.nbytes, type: ev.valueType };
        return this.afterJob(ts, true, recs, ev.stimulusId);
      }
      case 'execute-failure': {
        const ts = this.executingJob(ev.key);
        if (!ts) return this.logEvent(ev.key, 'execute-failure-ignored', ev.stimulusId);
        this.endExecution(ts);
        this.recordDuration(ts, ev.start, ev.stop);
        if (ev.start !== undefined && ev.stop !== undefined) ts.startstops.push({ action: 'compute', start: ev.start, stop: ev.stop });
        ts.exception = ev.exception;
        return this.afterJob(ts, false, recs, ev.stimulusId);
      }
      case 'gather-dep-success':
        return this.handleGatherDepSuccess(ev, recs, out);
      case 'gather-dep-busy': {
        const tasks = this.endGather(ev.worker);
        this.busyWorkers.add(ev.worker);
        out.push({ type: 'retry-busy-worker-later', worker: ev.worker, stimulusId: ev.stimulusId });
        this.logEvent(ev.worker, 'busy', ev.stimulusId);
        for (const ts of tasks) this.afterJob(ts, false, recs, ev.stimulusId);
        return;
      }
      case 'gather-dep-network-failure': {
        const tasks = this.endGather(ev.worker);
        this.logEvent(ev.worker, 'peer-gone', ev.stimulusId);
        // The peer is gone: forget everything it held; keys left without holders are missing.
        const held = this.hasWhat.get(ev.worker);
        if (held) {
          for (const ts of [...held]) {
            this.removeHolder(ts, ev.worker);
            if (ts.whoHas.size === 0 && (ts.state === 'fetch' || tasks.has(ts))) {
              out.push({
                type: 'send-to-scheduler',
                msg: { op: 'missing-data', key: ts.key, errantWorker: ev.worker, stimulusId: ev.stimulusId },
              });
            }
            if (ts.state === 'fetch' && ts.whoHas.size === 0) recs.set(ts, 'missing');
          }
        }
        this.dataNeeded.delete(ev.worker);
        this.busyWorkers.delete(ev.worker);
        for (const ts of tasks) this.afterJob(ts, false, recs, ev.stimulusId);
        return;
      }
      case 'gather-dep-failure': {
        const tasks = this.endGather(ev.worker);
        for (const ts of tasks) {
          if (ts.state === 'flight') {
            ts.exception = ev.exception;
            recs.set(ts, 'error');
          } else this.afterJob(ts, false, recs, ev.stimulusId);
        }
        return;
      }
      case 'retry-busy-worker':
        this.busyWorkers.delete(ev.worker);
        return;
      case 'remove-worker': {
        // Like a network failure, but told by the scheduler, which needs no missing-data. A
        // transfer from it still in flight ends with gather-dep-network-failure (the shell
        // drops the connection).
        this.logEvent(ev.worker, 'remove-worker', ev.stimulusId);
        const held = this.hasWhat.get(ev.worker);
        if (held) {
          for (const ts of [...held]) {
            this.removeHolder(ts, ev.worker);
            if (ts.state === 'fetch' && ts.whoHas.size === 0) recs.set(ts, 'missing');
          }
        }
        this.dataNeeded.delete(ev.worker);
        this.busyWorkers.delete(ev.worker);
        return;
      }
      case 'update-data':
        return this.handleUpdateData(ev, recs);
      case 'pause':
        this.paused = true;
        return;
      case 'unpause':
        this.paused = false;
        return;
      default: {
        const never: never = ev;
        throw new TypeError(`unknown worker event ${JSON.stringify((never as { type: unknown }).type)}`);
      }
    }
  }

  private handleComputeTask(ev: ComputeTaskEvent, recs: Recs, out: Instruction[]): void {
    const ts = this.ensureTask(ev.key);
    if (ts.state === 'memory') {
      ts.freed = false;
      // Already have it (e.g. fetched it earlier): tell the scheduler again.
      out.push(this.taskFinishedMsg(ts, ev.stimulusId));
      return;
    }
    if (ts.state === 'fetch' || ts.state === 'missing' || ts.state === 'error') {
      // Release first (that drops its old dependencies), then set it up anew.
      this.transition(ts, 'released', ev.stimulusId, recs, out);
      recs.delete(ts);
    }
    ts.spec = ev.spec;
    ts.freed = false;
    if (ts.state !== 'ready' && ts.state !== 'constrained') {
      // (a queued task keeps the queue it is in; the scheduler does not change resources anyway)
      ts.resources = ev.resources && Object.keys(ev.resources).length > 0 ? ev.resources : null;
    }
    ts.duration = ev.duration ?? null;
    ts.annotations = ev.annotations ?? null;
    const priorityChanged = ts.priority === null || comparePriority(ts.priority, ev.priority) !== 0;
    ts.priority = ev.priority;
    ts.arrival = ++this.arrivalCounter;

    const deps = ev.dependencies;
    if (deps !== undefined) {
      const { keys, nbytes, holders, whoHas } = deps;
      for (let i = 0; i < keys.length; i++) this.addComputeDependency(ts, ev, keys[i]!, nbytes[i]!, whoHas[i]!, holders, recs);
    }

    switch (ts.state) {
      case 'released':
      case 'fetch':
      case 'missing':
      case 'flight':
      case 'error':
      case 'cancelled':
      case 'resumed':
        recs.set(ts, 'waiting');
        break;
      case 'ready':
        if (priorityChanged) this.pushQueue(this.ready, ts);
        break;
      case 'constrained':
        if (priorityChanged) this.pushQueue(this.constrained, ts);
        break;
      case 'waiting':
        if (ts.waitingForData.size === 0) recs.set(ts, ts.resources ? 'constrained' : 'ready');
        break;
      default:
        break; // executing: nothing to do
    }
  }

  /**
   * One dependency of a compute-task: where it is (`at` indexes `holders`), its size and
   * priority, and the edges.
   */
  private addComputeDependency(ts: WorkerTask, ev: ComputeTaskEvent, depKey: Key, nbytes: number, at: readonly number[], holders: readonly Address[], recs: Recs): void {
    if (depKey === ev.key) return;
    const dep = this.ensureTask(depKey);
    const pending = recs.get(dep);
    if (pending === 'released' || pending === 'forgotten') recs.delete(dep);
    if (dep.state !== 'memory') dep.nbytes = nbytes;
    for (let j = 0; j < at.length; j++) this.addHolder(dep, holders[at[j]!]!);
    if (dep.arrival === 0) dep.arrival = ++this.arrivalCounter;
    if (dep.priority === null || comparePriority(ev.priority, dep.priority) < 0) {
      dep.priority = ev.priority;
      if (dep.state === 'fetch') this.pushFetch(dep);
    }
    if (!ts.dependencies.has(dep) && ts.state !== 'ready' && ts.state !== 'constrained' && ts.state !== 'executing') {
      ts.addDependency(dep);
      dep.addDependent(ts);
      if (ts.state === 'waiting' && dep.state !== 'memory') ts.addWaitingForData(dep);
    }
    this.recommendFetchIfNeeded(dep, recs);
  }

  /** A dependency this worker needs but neither holds nor computes: fetch it if anyone has it. */
  private recommendFetchIfNeeded(dep: WorkerTask, recs: Recs): void {
    switch (dep.state) {
      case 'released':
        recs.set(dep, dep.whoHas.size > 0 ? 'fetch' : 'missing');
        break;
      case 'missing':
        if (dep.whoHas.size > 0) recs.set(dep, 'fetch');
        break;
      case 'cancelled':
        recs.set(dep, 'fetch');
        break;
      case 'resumed':
        if (dep.next === 'waiting' && dep.spec === null) recs.set(dep, 'fetch');
        break;
      default:
        break;
    }
  }

  private handleFreeKeys(ev: FreeKeysEvent, recs: Recs): void {
    for (const key of ev.keys) {
      const ts = this.tasks.get(key);
      if (!ts) continue;
      ts.replica = false;
      // The scheduler no longer wants this task computed (or held) here.
      ts.spec = null;
      if (ts.state === 'memory' && this.hasActiveDependents(ts)) {
        // A local task still needs the data: release it once they are done with it.
        ts.freed = true;
        this.logEvent(key, 'free-deferred', ev.stimulusId);
        continue;
      }
      recs.set(ts, 'released');
    }
  }

  private handleAcquireReplicas(ev: AcquireReplicasEvent, recs: Recs): void {
    for (const [key, holders] of Object.entries(ev.whoHas)) {
      const ts = this.ensureTask(key);
      for (const w of holders) this.addHolder(ts, w);
      const n = ev.nbytes[key];
      if (n !== undefined && ts.state !== 'memory') ts.nbytes = n;
      ts.freed = false;
      if (ts.state === 'memory') continue;
      ts.replica = true;
      if (ts.priority === null) ts.priority = REPLICA_PRIORITY;
      if (ts.arrival === 0) ts.arrival = ++this.arrivalCounter;
      this.recommendFetchIfNeeded(ts, recs);
    }
  }

  private handleRemoveReplicas(ev: RemoveReplicasEvent, recs: Recs, out: Instruction[]): void {
    const rejected: WorkerTask[] = [];
    for (const key of ev.keys) {
      const ts = this.tasks.get(key);
      if (!ts || ts.state !== 'memory') continue;
      if (this.hasActiveDependents(ts)) {
        rejected.push(ts);
        continue;
      }
      ts.replica = false;
      recs.set(ts, 'released');
      out.push({ type: 'send-to-scheduler', msg: { op: 'release-worker-data', key, stimulusId: ev.stimulusId } });
    }
    if (rejected.length > 0) {
      // Still needed here: remind the scheduler that this worker holds them.
      const nbytes: Record<Key, number> = {};
      for (const ts of rejected) nbytes[ts.key] = ts.nbytes ?? this.defaultDataSize;
      out.push({
        type: 'send-to-scheduler',
        msg: { op: 'add-keys', keys: rejected.map((t) => t.key), nbytes, stimulusId: ev.stimulusId },
      });
    }
  }

  /**
   * The reference's transactional stealing: a task that has not started (waiting for its
   * dependencies, or queued to run) is released here and the scheduler may run it elsewhere;
   * one that runs or ran stays. The answer names the state either way, and goes out before
   * anything the release causes, so the scheduler decides on what was true when it asked.
   */
  private handleStealRequest(ev: StealRequestEvent, recs: Recs, out: Instruction[]): void {
    const ts = this.tasks.get(ev.key);
    const state = ts?.state ?? null;
    if (ts !== undefined && (state === 'waiting' || state === 'ready' || state === 'constrained')) {
      ts.spec = null;
      recs.set(ts, 'released');
    }
    out.push({ type: 'send-to-scheduler', msg: { op: 'steal-response', key: ev.key, state, stimulusId: ev.stimulusId } });
  }

  private handleGatherDepSuccess(ev: GatherDepSuccessEvent, recs: Recs, out: Instruction[]): void {
    const tasks = this.endGather(ev.worker);
    // One record for the whole gather, shared by its keys: a dependent reports it once.
    const transfer: StartStop | undefined = ev.start !== undefined && ev.stop !== undefined
      ? { action: 'transfer', start: ev.start, stop: ev.stop, source: ev.worker }
      : undefined;
    for (const ts of tasks) {
      const unsendable = ev.unsendable?.[ts.key];
      if (unsendable !== undefined) {
        // Every holder would fail to send it the same way: an error here, not missing data
        // (which made the scheduler recompute the task again and again).
        if (ts.state === 'flight') {
          ts.exception = unsendable;
          recs.set(ts, 'error');
        } else this.afterJob(ts, false, recs, ev.stimulusId);
      } else if (Object.prototype.hasOwnProperty.call(ev.data, ts.key)) {
        if (transfer !== undefined) ts.startstops.push(transfer);
        ts.pendingValue = { value: ev.data[ts.key], nbytes: ev.nbytes?.[ts.key], type: undefined };
        this.afterJob(ts, true, recs, ev.stimulusId);
      } else {
        // The peer does not have it (any more): tell the scheduler, try another holder.
        this.removeHolder(ts, ev.worker);
        out.push({
          type: 'send-to-scheduler',
          msg: { op: 'missing-data', key: ts.key, errantWorker: ev.worker, stimulusId: ev.stimulusId },
        });
        this.afterJob(ts, false, recs, ev.stimulusId);
      }
    }
  }

  private handleUpdateData(ev: UpdateDataEvent, recs: Recs): void {
    for (const [key, value] of Object.entries(ev.data)) {
      const ts = this.ensureTask(key);
      if (ts.state === 'memory') {
        ts.nbytes = this.data.set(key, value, ev.nbytes?.[key]);
        continue;
      }
      ts.pendingValue = { value, nbytes: ev.nbytes?.[key], type: undefined };
      recs.set(ts, 'memory');
    }
  }

  /**
   * An execution or transfer of `ts` ended (`ok`: with a value in `ts.pendingValue`). Decides what
   * the task becomes, depending on whether it was cancelled or resumed while the job ran.
   */
  private afterJob(ts: WorkerTask, ok: boolean, recs: Recs, stimulusId: StimulusId): void {
    switch (ts.state) {
      case 'executing':
        recs.set(ts, ok ? 'memory' : 'error');
        return;
      case 'flight':
        if (ok) recs.set(ts, 'memory');
        else recs.set(ts, ts.whoHas.size > 0 ? 'fetch' : 'missing');
        return;
      case 'cancelled':
        ts.pendingValue = null;
        this.finishCancelled(ts, stimulusId, recs);
        return;
      case 'resumed':
        if (ok) recs.set(ts, 'memory');
        else {
          ts.pendingValue = null;
          recs.set(ts, ts.next ?? 'released');
        }
        return;
      default:
        // Something else happened meanwhile (e.g. update-data put it in memory): drop the result.
        ts.pendingValue = null;
        this.logEvent(ts.key, 'job-result-dropped', stimulusId);
        if (ts.state === 'released' && ts.dependents.size === 0) recs.set(ts, 'forgotten');
        return;
    }
  }

  /** The task whose execution job for `key` runs (possibly forgotten meanwhile). */
  private executingJob(key: Key): WorkerTask | undefined {
    const ts = this.tasks.get(key);
    if (ts && this.executing.has(ts)) return ts;
    for (const t of this.executing) if (t.key === key) return t;
    return undefined;
  }

  private endExecution(ts: WorkerTask): void {
    if (this.executing.delete(ts)) {
      if (ts.expectedMsAtStart > QUEUE_BEHIND_MAX_MS) this.executingLong--;
      else this.executingTinyMs -= ts.expectedMsAtStart;
      this.executingDependencyBytes -= this.dependencyBytes(ts);
      if (this.executing.size === 0) this.executingTinyMs = 0; // no rounding drift carried over
    }
    if (ts.heldResources) {
      for (const [r, n] of Object.entries(ts.heldResources)) {
        this.availableResources[r] = (this.availableResources[r] ?? 0) + n;
      }
      ts.heldResources = null;
    }
  }

  private endGather(worker: Address): Set<WorkerTask> {
    const tasks = this.inFlightWorkers.get(worker);
    if (!tasks) return new Set();
    this.inFlightWorkers.delete(worker);
    this.bytesInFlight -= this.inFlightBytes.get(worker) ?? 0;
    this.inFlightBytes.delete(worker);
    for (const ts of tasks) if (ts.comingFrom === worker) ts.comingFrom = null;
    return tasks;
  }

  // ----------------------------------------------------------------------------------------
  // Scheduling of executions and transfers

  private ensureComputing(stimulusId: StimulusId, out: Instruction[]): void {
    if (this.paused) return;
    while (this.executing.size < this.executeSlots) {
      const r = this.peekValid(this.ready, 'ready');
      const c = this.peekValid(this.constrained, 'constrained');
      let ts: WorkerTask;
      const fromConstrained = c !== undefined && this.resourcesFit(c.ts) && (!r || entryLess(c, r));
      if (fromConstrained) ts = c.ts;
      else if (r) ts = r.ts;
      else break;
      if (this.executing.size >= this.nthreads && !this.mayQueueBehind(ts)) break;
      if (fromConstrained) this.constrained.pop();
      else this.ready.pop();
      this.transition(ts, 'executing', stimulusId, new Map(), out);
    }
  }

  /**
   * Whether `ts` may wait in the executor behind the tasks already there: all of them tiny (as
   * expected when each started).
   */
  private mayQueueBehind(ts: WorkerTask): boolean {
    const ms = this.expectedMs(ts);
    if (ms > QUEUE_BEHIND_MAX_MS || this.executingLong > 0) return false;
    if (this.executingDependencyBytes + this.dependencyBytes(ts) > QUEUED_DEPENDENCY_BYTES_MAX) return false;
    return ms + this.executingTinyMs <= QUEUED_WORK_MAX_MS;
  }

  /** The bytes of `ts`'s dependencies, summed once (they are all in memory by the time it may run). */
  private dependencyBytes(ts: WorkerTask): number {
    if (ts.dependencyBytes === null) {
      let bytes = 0;
      for (const dep of ts.dependencies) bytes += dep.nbytes ?? 0;
      ts.dependencyBytes = bytes;
    }
    return ts.dependencyBytes;
  }

  /**
   * Expected execution time, as measured here for its key prefix; unknown (Infinity) until one
   * task of the prefix ran here. (Not the scheduler's estimate: for a prefix it has not seen
   * finish, that is a default, which says nothing about this task.)
   */
  private expectedMs(ts: WorkerTask): number {
    return this.prefixDurations.get(ts.prefix) ?? Infinity;
  }

  private recordDuration(ts: WorkerTask, start: number | undefined, stop: number | undefined): void {
    if (start === undefined || stop === undefined) return;
    const prefix = ts.prefix;
    const old = this.prefixDurations.get(prefix);
    const d = Math.max(0, stop - start);
    this.prefixDurations.set(prefix, old === undefined ? d : 0.5 * old + 0.5 * d);
  }

  private resourcesFit(ts: WorkerTask): boolean {
    if (!ts.resources) return true;
    for (const [r, n] of Object.entries(ts.resources)) {
      if ((this.availableResources[r] ?? 0) < n) return false;
    }
    return true;
  }

  private peekValid(heap: Heap<QueueEntry>, state: TaskStateName): QueueEntry | undefined {
    for (;;) {
      const e = heap.peek();
      if (!e) return undefined;
      if (e.seq === e.ts.queueSeq && e.ts.state === state) return e;
      heap.pop();
    }
  }

  private ensureCommunicating(stimulusId: StimulusId, out: Instruction[]): void {
    if (this.paused) return;
    const skipped: QueueEntry[] = [];
    // fetch->flight recommends nothing that is used here; one Map for all of them, not one each.
    let discard: Recs | undefined;
    while (this.inFlightWorkers.size < this.transferIncomingCountLimit) {
      // Without a peer to ask, every fetch task would be popped and pushed back (on every
      // stimulus: with one peer in flight and thousands of keys to fetch, that dominated a tree
      // reduction's worker time).
      if (!this.somePeerAskable()) break;
      const e = this.peekValid(this.fetchQueue, 'fetch');
      if (!e) break;
      const ts = e.ts;
      const first = ts.nbytes ?? this.defaultDataSize;
      if (this.inFlightWorkers.size > 0 && this.bytesInFlight + first > this.transferIncomingBytesLimit) break;
      this.fetchQueue.pop();
      const worker = this.pickHolder(ts);
      if (worker === undefined) {
        skipped.push(e);
        continue;
      }
      // Batch: more keys this peer holds, by priority, within the per-request byte budget.
      const budget = Math.max(
        first,
        Math.min(this.transferMessageBytesLimit, this.transferIncomingBytesLimit - this.bytesInFlight),
      );
      const selected: WorkerTask[] = [ts];
      let total = first;
      const mine = this.dataNeeded.get(worker);
      if (mine) {
        const chosen = new Set<WorkerTask>(selected);
        for (;;) {
          const m = mine.peek();
          if (!m) break;
          if (m.seq !== m.ts.queueSeq || m.ts.state !== 'fetch' || !m.ts.whoHas.has(worker) || chosen.has(m.ts)) {
            mine.pop(); // stale, or already chosen
            continue;
          }
          const n = m.ts.nbytes ?? this.defaultDataSize;
          if (total + n > budget) break;
          mine.pop();
          chosen.add(m.ts);
          selected.push(m.ts);
          total += n;
        }
        if (mine.size === 0) this.dataNeeded.delete(worker);
      }
      this.inFlightWorkers.set(worker, new Set(selected));
      this.inFlightBytes.set(worker, total);
      this.bytesInFlight += total;
      discard ??= new Map();
      for (const s of selected) {
        s.comingFrom = worker;
        this.transition(s, 'flight', stimulusId, discard, out);
        clearIfAny(discard);
      }
      out.push({ type: 'gather-dep', worker, keys: selected.map((s) => s.key), totalNbytes: total, stimulusId });
    }
    for (const e of skipped) this.fetchQueue.push(e);
  }

  /** Whether some peer believed to hold data is neither busy nor serving a request of ours. */
  private somePeerAskable(): boolean {
    if (this.inFlightWorkers.size + this.busyWorkers.size < this.hasWhat.size) return true;
    for (const w of this.hasWhat.keys()) if (!this.inFlightWorkers.has(w) && !this.busyWorkers.has(w)) return true;
    return false;
  }

  /** A holder of `ts` that is neither busy nor already serving a request of ours; same host first. */
  private pickHolder(ts: WorkerTask): Address | undefined {
    let pick: Address | undefined;
    for (const w of ts.whoHas) {
      if (this.inFlightWorkers.has(w) || this.busyWorkers.has(w)) continue;
      if (hostOf(w) === this.host) return w;
      pick ??= w;
    }
    return pick;
  }

  // ----------------------------------------------------------------------------------------
  // Transitions

  private runTransitions(recs: Recs, stimulusId: StimulusId, out: Instruction[]): void {
    // Oldest recommendation first, through one live iterator: it also visits what transitions
    // add meanwhile (at the end, in insertion order) and skips what was deleted. Taking the
    // first entry with a fresh iterator each time walked past every deleted slot before it,
    // quadratic in the recommendations of one stimulus (a free-keys of 10 000 keys spent ~30 ms
    // there), as the scheduler's transitions() already avoids.
    for (const [ts, finish] of recs) {
      recs.delete(ts);
      this.transition(ts, finish, stimulusId, recs, out);
    }
  }

  /** Applies one transition (through `released` if the pair is not in the table). */
  transition(ts: WorkerTask, finish: TaskStateName, stimulusId: StimulusId, recs: Recs, out: Instruction[]): void {
    const start = ts.state;
    if (start === finish || start === 'forgotten') return;
    if (++this.transitionCounter > MAX_TRANSITIONS_PER_STIMULUS) {
      throw new TransitionCounterMaxExceededError(`more than ${MAX_TRANSITIONS_PER_STIMULUS} transitions for ${stimulusId}`);
    }
    const direct = TRANSITION_TABLE[start]?.[finish];
    // Recommendations of this transition alone (merged below), so the story shows what it caused.
    // One Map reused by every transition (no transition method calls transition()): a Map per
    // transition, several per task, was a large part of WorkerState's garbage.
    const local = this.localRecs;
    clearIfAny(local); // most transitions recommend nothing
    if (direct) {
      direct.call(this, ts, stimulusId, local, out);
    } else {
      const toReleased = TRANSITION_TABLE[start]?.released;
      if (start === 'released' || finish === 'released' || !toReleased) {
        throw new InvalidTransitionError(ts.key, start, finish, this.story(ts.key));
      }
      toReleased.call(this, ts, stimulusId, local, out);
      local.delete(ts); // superseded by `finish`
      if (ts.state !== finish) {
        // A running job may leave it cancelled rather than released; continue from there.
        const second = TRANSITION_TABLE[ts.state]?.[finish];
        if (!second) throw new InvalidTransitionError(ts.key, `${start}->${ts.state}`, finish, this.story(ts.key));
        second.call(this, ts, stimulusId, local, out);
      }
    }
    for (const [t, s] of local) recs.set(t, s);
    this.record(ts.key, start, ts.state, local, stimulusId);
  }

  private setState(ts: WorkerTask, state: TaskStateName): void {
    this.stateCounts[ts.state]--;
    this.stateCounts[state]++;
    ts.state = state;
  }

  // -- to waiting / ready / executing

  transitionReleasedWaiting(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    if (ts.spec === null) throw new InvalidTransitionError(ts.key, 'released', 'waiting (no run spec)', this.story(ts.key));
    this.setState(ts, 'waiting');
    clearIfAny(ts.waitingForData);
    for (const dep of ts.dependencies) {
      if (dep.state !== 'memory') ts.addWaitingForData(dep);
    }
    if (ts.waitingForData.size === 0) recs.set(ts, ts.resources ? 'constrained' : 'ready');
  }

  transitionWaitingReady(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    if (ts.resources) {
      recs.set(ts, 'constrained');
      return;
    }
    this.setState(ts, 'ready');
    this.pushQueue(this.ready, ts);
  }

  transitionWaitingConstrained(ts: WorkerTask): void {
    this.setState(ts, 'constrained');
    this.pushQueue(this.constrained, ts);
  }

  transitionQueuedExecuting(ts: WorkerTask, stimulusId: StimulusId, _r: Recs, out: Instruction[]): void {
    ts.queueSeq++;
    this.setState(ts, 'executing');
    this.executing.add(ts);
    const expected = this.expectedMs(ts);
    ts.expectedMsAtStart = expected;
    if (expected > QUEUE_BEHIND_MAX_MS) this.executingLong++;
    else this.executingTinyMs += expected;
    this.executingDependencyBytes += this.dependencyBytes(ts);
    if (ts.resources) {
      ts.heldResources = ts.resources;
      for (const [r, n] of Object.entries(ts.resources)) this.availableResources[r] = (this.availableResources[r] ?? 0) - n;
    }
    out.push({ type: 'execute', key: ts.key, stimulusId });
  }

  // -- to memory / error

  transitionExecutingMemory(ts: WorkerTask, stimulusId: StimulusId, recs: Recs, out: Instruction[]): void {
    const pv = ts.pendingValue;
    this.putInMemory(ts, recs);
    const finished = this.taskFinishedMsg(ts, stimulusId);
    // A small primitive result rides along (the scheduler forwards it in key-in-memory), so the
    // client needs no who-has + get-data round trips for it: ~0.5 ms of a ~2.5 ms round trip.
    if (pv !== null && isInlineValue(pv.value)) (finished.msg as { value?: InlineValue }).value = pv.value;
    out.push(finished);
  }

  transitionFlightMemory(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    this.putInMemory(ts, recs);
    this.addKeys.push(ts);
  }

  transitionResumedMemory(ts: WorkerTask, stimulusId: StimulusId, recs: Recs, out: Instruction[]): void {
    const wasAsked = ts.next === 'waiting';
    ts.previous = null;
    ts.next = null;
    this.putInMemory(ts, recs);
    // Asked to compute it: report it finished; fetched as a dependency: report the replica.
    if (wasAsked) out.push(this.taskFinishedMsg(ts, stimulusId));
    else this.addKeys.push(ts);
  }

  /** update-data (scatter) for a task not in memory. */
  transitionGenericMemory(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    ts.queueSeq++;
    ts.previous = null;
    ts.next = null;
    clearIfAny(ts.waitingForData);
    this.putInMemory(ts, recs);
  }

  transitionExecutingError(ts: WorkerTask, stimulusId: StimulusId, _r: Recs, out: Instruction[]): void {
    this.setState(ts, 'error');
    out.push({
      type: 'send-to-scheduler',
      msg: {
        op: 'task-erred',
        key: ts.key,
        exception: ts.exception ?? { name: 'Error', message: 'unknown error' },
        startstops: [...this.takeDependencyTransfers(ts), ...ts.startstops],
        stimulusId,
      },
    });
  }

  /** The data of a dependency could not be used: its local dependents err with the same exception. */
  transitionFlightError(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    this.setState(ts, 'error');
    for (const d of ts.dependents) {
      if (d.state === 'waiting') {
        d.exception = ts.exception;
        recs.set(d, 'error');
      }
    }
  }

  transitionWaitingError(ts: WorkerTask, stimulusId: StimulusId, recs: Recs, out: Instruction[]): void {
    clearIfAny(ts.waitingForData);
    this.transitionExecutingError(ts, stimulusId, recs, out);
  }

  // -- fetching

  transitionReleasedFetch(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    if (ts.whoHas.size === 0) {
      recs.set(ts, 'missing');
      return;
    }
    this.setState(ts, 'fetch');
    if (ts.priority === null) ts.priority = REPLICA_PRIORITY;
    this.pushFetch(ts);
  }

  transitionReleasedMissing(ts: WorkerTask): void {
    this.setState(ts, 'missing');
  }

  transitionFetchMissing(ts: WorkerTask): void {
    ts.queueSeq++;
    this.setState(ts, 'missing');
  }

  transitionFetchFlight(ts: WorkerTask): void {
    ts.queueSeq++;
    this.setState(ts, 'flight');
  }

  transitionFlightFetch(ts: WorkerTask, s: StimulusId, recs: Recs): void {
    ts.comingFrom = null;
    this.setState(ts, 'released');
    this.transitionReleasedFetch(ts, s, recs);
  }

  transitionFlightMissing(ts: WorkerTask): void {
    ts.comingFrom = null;
    this.setState(ts, 'missing');
  }

  // -- releasing

  /** Released while a job runs: the job keeps its thread/slot; its result will be dropped. */
  transitionJobCancelled(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    ts.previous = ts.state === 'executing' ? 'executing' : 'flight';
    ts.next = null;
    this.setState(ts, 'cancelled');
    this.dropDependencies(ts, recs);
  }

  transitionResumedReleased(ts: WorkerTask): void {
    ts.next = null;
    this.setState(ts, 'cancelled');
  }

  /** Freeing an already cancelled task changes nothing: it waits for its job. */
  transitionCancelledReleased(): void {}

  transitionGenericReleased(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    ts.queueSeq++;
    ts.freed = false;
    if (ts.state === 'memory') this.data.delete(ts.key);
    clearIfAny(ts.waitingForData);
    ts.exception = null;
    ts.pendingValue = null;
    this.setState(ts, 'released');
    this.dropDependencies(ts, recs);
    if (ts.dependents.size === 0) recs.set(ts, 'forgotten');
  }

  transitionReleasedForgotten(ts: WorkerTask, _s: StimulusId, recs: Recs): void {
    // Still needed by a dependent, or a job of it still runs (forgetting it would let a second
    // job with the same key start): stay released.
    if (ts.dependents.size > 0 || this.isJobRunning(ts)) return;
    this.dropDependencies(ts, recs);
    for (const w of [...ts.whoHas]) this.removeHolder(ts, w);
    this.setState(ts, 'forgotten');
    this.tasks.delete(ts.key);
  }

  /** The job of a cancelled task ended: now it is really released. */
  private finishCancelled(ts: WorkerTask, stimulusId: StimulusId, recs: Recs): void {
    const local: Recs = new Map();
    ts.previous = null;
    ts.next = null;
    ts.comingFrom = null;
    this.setState(ts, 'released');
    if (ts.dependents.size === 0) local.set(ts, 'forgotten');
    else this.recommendFetchIfNeeded(ts, local);
    for (const [t, s] of local) recs.set(t, s);
    this.record(ts.key, 'cancelled', 'released', local, stimulusId);
  }

  /** Detaches `ts` from its dependencies; pure dependencies nobody needs any more are released. */
  private dropDependencies(ts: WorkerTask, recs: Recs): void {
    for (const dep of ts.dependencies) {
      dep.dependents.delete(ts);
      this.maybeReleaseFreed(dep, recs);
      if (dep.dependents.size > 0 || dep.replica || dep.spec !== null) continue;
      if (dep.state === 'fetch' || dep.state === 'missing' || dep.state === 'flight' || dep.state === 'resumed') {
        recs.set(dep, 'released');
      } else if (dep.state === 'released') recs.set(dep, 'forgotten');
    }
    clearIfAny(ts.dependencies);
  }

  private hasActiveDependents(ts: WorkerTask): boolean {
    for (const d of ts.dependents) {
      if (d.state === 'waiting' || d.state === 'ready' || d.state === 'constrained' || d.state === 'executing') return true;
    }
    return false;
  }

  private maybeReleaseFreed(dep: WorkerTask, recs: Recs): void {
    if (dep.freed && dep.state === 'memory' && !this.hasActiveDependents(dep)) recs.set(dep, 'released');
  }

  // -- cancelled / resumed

  /** Wanted (computed here) again while its job still runs. */
  transitionCancelledWaiting(ts: WorkerTask): void {
    if (ts.previous === 'executing') {
      ts.previous = null;
      this.setState(ts, 'executing'); // the running execution will do
    } else {
      ts.next = 'waiting';
      this.setState(ts, 'resumed');
    }
  }

  /** Wanted as a dependency again while its job still runs. */
  transitionCancelledFetch(ts: WorkerTask): void {
    if (ts.previous === 'flight') {
      ts.previous = null;
      this.setState(ts, 'flight'); // the running transfer will do
    } else {
      ts.next = 'fetch';
      this.setState(ts, 'resumed');
    }
  }

  transitionFlightWaiting(ts: WorkerTask): void {
    ts.previous = 'flight';
    ts.next = 'waiting';
    this.setState(ts, 'resumed');
  }

  transitionExecutingFetch(ts: WorkerTask): void {
    ts.previous = 'executing';
    ts.next = 'fetch';
    this.setState(ts, 'resumed');
  }

  transitionResumedWaiting(ts: WorkerTask, s: StimulusId, recs: Recs, out: Instruction[]): void {
    if (ts.previous === 'executing') {
      // Wanted as computed after all, and the execution still runs.
      ts.previous = null;
      ts.next = null;
      this.setState(ts, 'executing');
    } else if (this.isJobRunning(ts)) {
      ts.next = 'waiting';
    } else {
      // The transfer failed: compute it.
      ts.previous = null;
      ts.next = null;
      this.setState(ts, 'released');
      this.transitionReleasedWaiting(ts, s, recs);
      void out;
    }
  }

  transitionResumedFetch(ts: WorkerTask, s: StimulusId, recs: Recs): void {
    if (ts.previous === 'flight' && this.isJobRunning(ts)) {
      ts.previous = null;
      ts.next = null;
      this.setState(ts, 'flight');
    } else if (this.isJobRunning(ts)) {
      ts.next = 'fetch';
    } else {
      ts.previous = null;
      ts.next = null;
      this.setState(ts, 'released');
      this.transitionReleasedFetch(ts, s, recs);
    }
  }

  private isJobRunning(ts: WorkerTask): boolean {
    if (this.executing.has(ts)) return true;
    for (const set of this.inFlightWorkers.values()) if (set.has(ts)) return true;
    return false;
  }

  // ----------------------------------------------------------------------------------------
  // Helpers

  private putInMemory(ts: WorkerTask, recs: Recs): void {
    const pv = ts.pendingValue;
    ts.pendingValue = null;
    if (pv) {
      ts.nbytes = this.data.set(ts.key, pv.value, pv.nbytes);
      ts.valueType = pv.type ?? typeName(pv.value);
    } else if (!this.data.has(ts.key)) {
      throw new InvalidWorkerStateError(`${ts.key} -> memory without a value`, ts.key, this.story(ts.key));
    }
    ts.exception = null;
    ts.comingFrom = null;
    this.setState(ts, 'memory');
    for (const dep of ts.dependencies) this.maybeReleaseFreed(dep, recs);
    for (const d of ts.dependents) {
      if (d.waitingForData.delete(ts) && d.waitingForData.size === 0 && d.state === 'waiting') {
        recs.set(d, d.resources ? 'constrained' : 'ready');
      }
    }
  }

  private taskFinishedMsg(ts: WorkerTask, stimulusId: StimulusId): SendToScheduler {
    const msg: SendToScheduler = {
      type: 'send-to-scheduler',
      msg: {
        op: 'task-finished',
        key: ts.key,
        nbytes: ts.nbytes ?? this.defaultDataSize,
        startstops: [...this.takeDependencyTransfers(ts), ...ts.startstops, ...this.takeDiskActivity()],
        stimulusId,
      },
    };
    if (ts.valueType !== null) (msg.msg as { type?: string }).type = ts.valueType;
    return msg;
  }

  /**
   * The transfer records of dependencies fetched for `ts`, taken so that each is reported once:
   * with the first dependent that finishes, as the inputs it waited for (the scheduler's task
   * stream and the dashboard draw them beside that task).
   */
  /**
   * Spilling and reading back since the last finished task: reported with this one, so the task
   * stream shows the worker's disk time where it happened (a spill its own result caused lands
   * on it, as in the reference).
   */
  private takeDiskActivity(): readonly StartStop[] {
    return this.data.takeDiskActivity?.() ?? NO_STARTSTOPS;
  }

  /**
   * The transfers that brought `ts`'s dependencies here, each once: the keys of one gather share
   * its record (handleGatherDepSuccess), so it is one row (a sum over 5 000 fetched values
   * reported 5 000 identical rows, which the task-finished message, the scheduler and the task
   * stream each carried).
   */
  private takeDependencyTransfers(ts: WorkerTask): readonly StartStop[] {
    let transfers: Set<StartStop> | undefined;
    for (const dep of ts.dependencies) {
      if (!dep.startstops.some((ss) => ss.action === 'transfer')) continue;
      for (const ss of dep.startstops) if (ss.action === 'transfer') (transfers ??= new Set()).add(ss);
      dep.startstops = dep.startstops.filter((ss) => ss.action !== 'transfer');
    }
    return transfers === undefined ? NO_STARTSTOPS : [...transfers];
  }

  private ensureTask(key: Key): WorkerTask {
    let ts = this.tasks.get(key);
    if (!ts) {
      ts = new WorkerTask(key);
      this.tasks.set(key, ts);
      this.stateCounts.released++;
    }
    return ts;
  }

  private addHolder(ts: WorkerTask, w: Address): void {
    if (w === this.address || ts.whoHas.has(w)) return;
    ts.addHolder(w);
    let set = this.hasWhat.get(w);
    if (!set) this.hasWhat.set(w, (set = new Set()));
    set.add(ts);
    if (ts.state === 'fetch' && ts.priority) this.pushDataNeeded(w, ts);
  }

  private removeHolder(ts: WorkerTask, w: Address): void {
    ts.whoHas.delete(w);
    const set = this.hasWhat.get(w);
    if (set) {
      set.delete(ts);
      if (set.size === 0) this.hasWhat.delete(w);
    }
  }

  private pushQueue(heap: Heap<QueueEntry>, ts: WorkerTask): void {
    ts.queueSeq++;
    heap.push({ ts, seq: ts.queueSeq, priority: ts.priority ?? REPLICA_PRIORITY, arrival: ts.arrival });
  }

  private pushFetch(ts: WorkerTask): void {
    this.pushQueue(this.fetchQueue, ts);
    for (const w of ts.whoHas) this.pushDataNeeded(w, ts);
    this.compactDataNeeded();
  }

  private pushDataNeeded(w: Address, ts: WorkerTask): void {
    let heap = this.dataNeeded.get(w);
    if (!heap) this.dataNeeded.set(w, (heap = new Heap(fetchLess)));
    heap.push({ ts, seq: ts.queueSeq, priority: ts.priority ?? REPLICA_PRIORITY, arrival: ts.arrival });
  }

  /** Stale entries pile up in per-peer heaps of peers never asked; rebuild when they dominate. */
  private compactDataNeeded(): void {
    let entries = 0;
    for (const h of this.dataNeeded.values()) entries += h.size;
    if (entries < 1024 || entries < 4 * this.stateCounts.fetch * 4) return;
    this.dataNeeded.clear();
    for (const ts of this.tasks.values()) {
      if (ts.state === 'fetch') for (const w of ts.whoHas) this.pushDataNeeded(w, ts);
    }
  }

  private record(key: Key, start: string, finish: string, recs: Recs, stimulusId: StimulusId): void {
    if (this.transitionHook !== null) this.transitionHook(key, start, finish, stimulusId);
    // One list reused for every entry: the log copies what it keeps.
    const flat = this.recordScratch;
    flat.length = 0;
    if (recs.size > 0) recs.forEach((s, t) => flat.push(t.key, s));
    this.log.push(key, start, finish, flat, stimulusId, this.now());
  }

  private logEvent(key: Key, what: string, stimulusId: StimulusId): void {
    this.log.push(key, what, '', null, stimulusId, this.now());
  }

  /** Log entries that mention any of `keys` (or stimulus ids), oldest first. */
  story(...keys: string[]): StoryEntry[] {
    const want = new Set(keys);
    const out: StoryEntry[] = [];
    this.log.forEach((key, start, finish, flat, stimulusId, time) => {
      let hit = want.has(key) || want.has(stimulusId);
      for (let i = 0; !hit && flat !== null && i < flat.length; i += 2) hit = want.has(flat[i]!);
      if (!hit) return;
      const recs: Record<Key, string> = {};
      for (let i = 0; flat !== null && i < flat.length; i += 2) recs[flat[i]!] = flat[i + 1]!;
      out.push([key, start, finish, recs, stimulusId, time]);
    });
    return out;
  }

  // ----------------------------------------------------------------------------------------
  // Introspection

  get readyCount(): number {
    return this.stateCounts.ready + this.stateCounts.constrained;
  }

  get inFlightCount(): number {
    return this.stateCounts.flight;
  }

  /** Checks every invariant; throws InvalidWorkerStateError on the first broken one. */
  validateState(): void {
    const fail = (msg: string, ts?: WorkerTask): never => {
      throw new InvalidWorkerStateError(msg, ts?.key, ts ? this.story(ts.key) : []);
    };
    const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskStateName, number>;
    const readyValid = new Set<WorkerTask>();
    for (const e of this.ready.values()) if (e.seq === e.ts.queueSeq && e.ts.state === 'ready') readyValid.add(e.ts);
    const constrainedValid = new Set<WorkerTask>();
    for (const e of this.constrained.values()) {
      if (e.seq === e.ts.queueSeq && e.ts.state === 'constrained') constrainedValid.add(e.ts);
    }
    const fetchValid = new Set<WorkerTask>();
    for (const e of this.fetchQueue.values()) if (e.seq === e.ts.queueSeq && e.ts.state === 'fetch') fetchValid.add(e.ts);
    const inFlight = new Map<WorkerTask, Address>();
    let bytes = 0;
    for (const [w, set] of this.inFlightWorkers) {
      bytes += this.inFlightBytes.get(w) ?? fail(`no byte count for in-flight peer ${w}`);
      for (const ts of set) {
        if (inFlight.has(ts)) fail(`${ts.key} in flight from two peers`, ts);
        inFlight.set(ts, w);
      }
    }
    if (bytes !== this.bytesInFlight) fail(`bytesInFlight ${this.bytesInFlight} != sum of requests ${bytes}`);
    if (this.inFlightWorkers.size > this.transferIncomingCountLimit) fail('too many peers in flight');
    if (this.executing.size > this.executeSlots) fail(`${this.executing.size} executing with ${this.executeSlots} slots`);

    let long = 0;
    let tinyMs = 0;
    let depBytes = 0;
    for (const ts of this.executing) {
      if (ts.expectedMsAtStart > QUEUE_BEHIND_MAX_MS) long++;
      else tinyMs += ts.expectedMsAtStart;
      depBytes += ts.dependencyBytes ?? NaN;
    }
    if (depBytes !== this.executingDependencyBytes) fail(`executingDependencyBytes ${this.executingDependencyBytes} != ${depBytes}`);
    if (long !== this.executingLong) fail(`executingLong ${this.executingLong} != ${long}`);
    if (Math.abs(tinyMs - this.executingTinyMs) > 1e-6) fail(`executingTinyMs ${this.executingTinyMs} != ${tinyMs}`);

    const used: Record<string, number> = {};
    for (const ts of this.executing) {
      if (!(ts.state === 'executing' || ts.state === 'cancelled' || ts.state === 'resumed' || ts.state === 'memory' || ts.state === 'error' || ts.state === 'released')) {
        fail(`${ts.key} has an execution job in state ${ts.state}`, ts);
      }
      for (const [r, n] of Object.entries(ts.heldResources ?? {})) used[r] = (used[r] ?? 0) + n;
    }
    for (const r of new Set([...Object.keys(this.totalResources), ...Object.keys(this.availableResources)])) {
      const avail = this.availableResources[r] ?? 0;
      if (avail < 0) fail(`resource ${r} over-committed (${avail})`);
      if (avail + (used[r] ?? 0) !== (this.totalResources[r] ?? 0)) fail(`resource ${r} accounting is off`);
    }

    for (const [key, ts] of this.tasks) {
      if (ts.key !== key) fail(`task stored under ${key} has key ${ts.key}`, ts);
      counts[ts.state]++;
      if (ts.whoHas.has(this.address)) fail(`${key} lists this worker as a holder`, ts);
      for (const w of ts.whoHas) if (!this.hasWhat.get(w)?.has(ts)) fail(`${key}: hasWhat[${w}] is missing it`, ts);
      for (const dep of ts.dependencies) {
        if (!dep.dependents.has(ts)) fail(`${key} depends on ${dep.key}, which does not list it as a dependent`, ts);
        if (this.tasks.get(dep.key) !== dep) fail(`${key} depends on forgotten ${dep.key}`, ts);
      }
      for (const d of ts.dependents) {
        if (!d.dependencies.has(ts)) fail(`${key} lists dependent ${d.key}, which does not depend on it`, ts);
        if (this.tasks.get(d.key) !== d) fail(`${key} has forgotten dependent ${d.key}`, ts);
      }
      const inMemory = this.data.has(key);
      if ((ts.state === 'memory') !== inMemory) fail(`${key} is ${ts.state} but data has it: ${inMemory}`, ts);
      if (inFlight.has(ts) && !['flight', 'cancelled', 'resumed', 'memory', 'released'].includes(ts.state)) {
        fail(`${key} is ${ts.state} but in a gather request`, ts);
      }
      switch (ts.state) {
        case 'waiting':
          if (!ts.spec) fail(`${key} waiting without a run spec`, ts);
          if (ts.waitingForData.size === 0) fail(`${key} waiting for nothing`, ts);
          for (const dep of ts.dependencies) {
            if ((dep.state === 'memory') === ts.waitingForData.has(dep)) fail(`${key}: waitingForData wrong for ${dep.key}`, ts);
          }
          break;
        case 'ready':
        case 'constrained':
          if (!ts.spec) fail(`${key} ${ts.state} without a run spec`, ts);
          if (!(ts.state === 'ready' ? readyValid : constrainedValid).has(ts)) fail(`${key} ${ts.state} but not queued`, ts);
          for (const dep of ts.dependencies) if (dep.state !== 'memory') fail(`${key} ${ts.state} but ${dep.key} is ${dep.state}`, ts);
          if ((ts.state === 'constrained') !== (ts.resources !== null)) fail(`${key} ${ts.state} with resources ${JSON.stringify(ts.resources)}`, ts);
          break;
        case 'executing':
          if (!this.executing.has(ts)) fail(`${key} executing without a job`, ts);
          break;
        case 'fetch':
          if (ts.whoHas.size === 0) fail(`${key} fetch without holders`, ts);
          if (!fetchValid.has(ts)) fail(`${key} fetch but not queued`, ts);
          break;
        case 'flight':
          if (!inFlight.has(ts)) fail(`${key} in flight without a request`, ts);
          if (ts.comingFrom !== inFlight.get(ts)) fail(`${key} comingFrom ${ts.comingFrom} != ${inFlight.get(ts)}`, ts);
          break;
        case 'cancelled':
        case 'resumed':
          if (ts.previous === 'executing' && !this.executing.has(ts)) fail(`${key} ${ts.state} from executing without a job`, ts);
          if (ts.previous === 'flight' && !inFlight.has(ts)) fail(`${key} ${ts.state} from flight without a request`, ts);
          if (ts.state === 'resumed' && ts.next === null) fail(`${key} resumed without next`, ts);
          break;
        case 'error':
          if (!ts.exception) fail(`${key} error without exception`, ts);
          break;
        case 'forgotten':
          fail(`${key} forgotten but still in tasks`, ts);
          break;
        default:
          break;
      }
      if (ts.state !== 'waiting' && ts.waitingForData.size > 0) fail(`${key} ${ts.state} with waitingForData`, ts);
    }
    for (const ts of this.executing) if (this.tasks.get(ts.key) !== ts) fail(`executing ${ts.key} is forgotten`, ts);
    for (const key of this.data.keys()) if (!this.tasks.has(key)) fail(`data holds ${key}, which has no task`);
    for (const [w, set] of this.hasWhat) for (const ts of set) if (!ts.whoHas.has(w)) fail(`hasWhat[${w}] lists ${ts.key} wrongly`, ts);
    for (const s of TASK_STATES) {
      if (s !== 'forgotten' && counts[s] !== this.stateCounts[s]) fail(`count of ${s}: ${this.stateCounts[s]} != ${counts[s]}`);
    }
  }
}

/** The transition table: one named method per `'from->to'` pair. */
const TRANSITIONS: Record<string, TransitionFn | undefined> = {
  'released->waiting': WorkerState.prototype.transitionReleasedWaiting,
  'released->fetch': WorkerState.prototype.transitionReleasedFetch,
  'released->missing': WorkerState.prototype.transitionReleasedMissing,
  'released->memory': WorkerState.prototype.transitionGenericMemory,
  'released->forgotten': WorkerState.prototype.transitionReleasedForgotten,
  'waiting->ready': WorkerState.prototype.transitionWaitingReady,
  'waiting->constrained': WorkerState.prototype.transitionWaitingConstrained,
  'waiting->memory': WorkerState.prototype.transitionGenericMemory,
  'waiting->error': WorkerState.prototype.transitionWaitingError,
  'waiting->released': WorkerState.prototype.transitionGenericReleased,
  'ready->executing': WorkerState.prototype.transitionQueuedExecuting,
  'ready->memory': WorkerState.prototype.transitionGenericMemory,
  'ready->released': WorkerState.prototype.transitionGenericReleased,
  'constrained->executing': WorkerState.prototype.transitionQueuedExecuting,
  'constrained->memory': WorkerState.prototype.transitionGenericMemory,
  'constrained->released': WorkerState.prototype.transitionGenericReleased,
  'executing->memory': WorkerState.prototype.transitionExecutingMemory,
  'executing->error': WorkerState.prototype.transitionExecutingError,
  'executing->fetch': WorkerState.prototype.transitionExecutingFetch,
  'executing->released': WorkerState.prototype.transitionJobCancelled,
  'fetch->flight': WorkerState.prototype.transitionFetchFlight,
  'fetch->missing': WorkerState.prototype.transitionFetchMissing,
  'fetch->memory': WorkerState.prototype.transitionGenericMemory,
  'fetch->released': WorkerState.prototype.transitionGenericReleased,
  'missing->fetch': WorkerState.prototype.transitionReleasedFetch,
  'missing->memory': WorkerState.prototype.transitionGenericMemory,
  'missing->released': WorkerState.prototype.transitionGenericReleased,
  'flight->memory': WorkerState.prototype.transitionFlightMemory,
  'flight->fetch': WorkerState.prototype.transitionFlightFetch,
  'flight->missing': WorkerState.prototype.transitionFlightMissing,
  'flight->error': WorkerState.prototype.transitionFlightError,
  'flight->waiting': WorkerState.prototype.transitionFlightWaiting,
  'flight->released': WorkerState.prototype.transitionJobCancelled,
  'memory->released': WorkerState.prototype.transitionGenericReleased,
  'error->released': WorkerState.prototype.transitionGenericReleased,
  'cancelled->released': WorkerState.prototype.transitionCancelledReleased,
  'cancelled->waiting': WorkerState.prototype.transitionCancelledWaiting,
  'cancelled->fetch': WorkerState.prototype.transitionCancelledFetch,
  'cancelled->memory': WorkerState.prototype.transitionGenericMemory,
  'resumed->memory': WorkerState.prototype.transitionResumedMemory,
  'resumed->waiting': WorkerState.prototype.transitionResumedWaiting,
  'resumed->fetch': WorkerState.prototype.transitionResumedFetch,
  'resumed->released': WorkerState.prototype.transitionResumedReleased,
} as Record<string, TransitionFn | undefined>;

/** The allowed `'from->to'` pairs (for documentation and tests). */
export const TRANSITION_PAIRS: readonly string[] = Object.keys(TRANSITIONS);

/**
 * TRANSITIONS as from -> to -> method: transition() runs several times per task, and looking up
 * two interned state names costs less than building a `'from->to'` string each time.
 */
const TRANSITION_TABLE: Record<string, Record<string, TransitionFn> | undefined> = {};
for (const [pair, fn] of Object.entries(TRANSITIONS)) {
  const [from, to] = pair.split('->') as [string, string];
  (TRANSITION_TABLE[from] ??= {})[to] = fn!;
}

function hostOf(address: Address): string {
  const m = /^[a-z]+:\/\/(\[[^\]]*\]|[^:/]*)/.exec(address);
  return m?.[1] ?? address;
}
