// The scheduler's state machine, without I/O: the reference's "Scheduling State" chapter.
//
// Stimuli go in through `handleStimulus(...events)`; messages to send come out as Instructions,
// batched per destination. Task state changes only through the named transition methods of the
// `from->to` table, driven by `transitions(recommendations)` until a steady state. With
// `validate: true` every transition checks the task's invariants and every stimulus ends with a
// full `validateState()`.
//
// Hot-path notes: recommendations are a Map iterated while it grows (FIFO, O(1) amortized, a key
// recommended again before it is visited keeps its place and takes the newest value); outgoing
// messages are appended per destination and consecutive `free-keys` / `cancelled-keys` to the same
// destination are merged; worker choice is O(candidates) and O(1) for large pools without deps.

import type {
  Address,
  ComputeTaskMsg,
  InlineValue,
  Key,
  KeyInMemoryMsg,
  SchedulerToClientMsg,
  SchedulerToWorkerMsg,
  StartStop,
  StimulusId,
  StoryEntry,
  TaskDefinition,
  TaskDependencies,
  WireError,
} from '@dd/protocol';
import { TransitionLog, clearIfAny, keyGroup, keySplit } from '@dd/protocol';
import {
  InvalidSchedulerStateError,
  InvalidTransitionError,
  TransitionCounterMaxExceededError,
  killedWorkerError,
} from './errors';
import type {
  AddKeysEvent,
  AddWorkerEvent,
  CancelEvent,
  Instruction,
  RemoveWorkerEvent,
  RetryEvent,
  SchedulerEvent,
  StealResponseEvent,
  TaskErredEvent,
  TaskFinishedEvent,
  UpdateDataEvent,
  UpdateGraphEvent,
} from './events';
import {
  ClientState,
  FIRE_AND_FORGET_CLIENT,
  TaskGroup,
  TaskPrefix,
  TaskState,
  WorkerState,
  comparePriority,
} from './state-types';
import type { PlacementRun, TaskStateName } from './state-types';
import { planSteals, type StealMove } from './stealing';

export interface SchedulerStateOptions {
  /** Check invariants after every transition and stimulus (slow; on in tests). Default false. */
  validate?: boolean;
  /** Worker deaths a task may be involved in before it errs with KilledWorker. Default 3. */
  allowedFailures?: number;
  /** Submissions closer together than this share a priority generation. Default 100 ms. */
  fifoTimeoutMs?: number;
  /** Compute-time guess for tasks of a prefix never measured. Default 0.5 ms. */
  defaultTaskDurationMs?: number;
  /** Bytes per second assumed between workers, for transfer-cost estimates. Default 100 MB/s. */
  bandwidth?: number;
  /**
   * Fixed cost of fetching dependencies from other workers (a request and its reply), added to
   * the transfer-cost estimate of a worker that lacks any of a task's dependencies. Default 1 ms.
   */
  transferLatencyMs?: number;
  /** Bytes assumed for a result of unknown size. Default 1024. */
  defaultDataSize?: number;
  /** Entries kept in the transition log (story). Default 25,000 (a larger log costs GC time). */
  transitionLogSize?: number;
  /**
   * Work stealing (the reference's): tasks go where their dependencies are, and `balance`
   * stimuli move queued ones to idle workers when that pays. Off: no balance, and other workers
   * compete for each task at placement instead (charged the transfer). Default true.
   */
  workStealing?: boolean;
  /** Milliseconds clock (Date.now by default); injectable for deterministic tests. */
  clock?: () => number;
}

export interface CompiledSchedulerStateOptions {
  validate: boolean;
  allowedFailures: number;
  fifoTimeoutMs: number;
  defaultTaskDurationS: number;
  bandwidth: number;
  transferLatencyS: number;
  defaultDataSize: number;
  transitionLogSize: number;
  workStealing: boolean;
  clock: () => number;
}

export function compileSchedulerStateOptions(o: SchedulerStateOptions = {}): CompiledSchedulerStateOptions {
  return {
    validate: o.validate ?? false,
    allowedFailures: o.allowedFailures ?? 3,
    fifoTimeoutMs: o.fifoTimeoutMs ?? 100,
    defaultTaskDurationS: (o.defaultTaskDurationMs ?? 0.5) / 1000,
    bandwidth: o.bandwidth ?? 100e6,
    transferLatencyS: (o.transferLatencyMs ?? 1) / 1000,
    defaultDataSize: o.defaultDataSize ?? 1024,
    transitionLogSize: Math.max(1, o.transitionLogSize ?? 25_000),
    workStealing: o.workStealing ?? true,
    clock: o.clock ?? Date.now,
  };
}

/**
 * Recommendations of one transition as flat `[key, state, key, state, ...]` pairs: cheaper than
 * a dictionary-mode object per transition; a later pair for the same key wins.
 */
type Recs = string[];

/** Dependencies a task may have and still release them in the stimulus that finishes it. */
export const DEFER_RELEASES_ABOVE = 64;

function recGet(recs: Recs, key: Key): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < recs.length; i += 2) if (recs[i] === key) found = recs[i + 1];
  return found;
}

function recsToRecord(recs: Recs): Record<Key, string> {
  const out: Record<Key, string> = {};
  for (let i = 0; i < recs.length; i += 2) out[recs[i] as string] = recs[i + 1] as string;
  return out;
}

/** Extra context some transitions need (the worker that reported, the error, ...). */
interface TransitionArgs {
  worker?: WorkerState;
  nbytes?: number;
  type?: string | undefined;
  startstops?: StartStop[] | undefined;
  /** task-finished's inline result, for the key-in-memory messages of this transition. */
  value?: InlineValue | undefined;
  exception?: WireError;
  cause?: TaskState;
}

type TransitionFn = (ts: TaskState, recs: Recs, stimulusId: StimulusId, args: TransitionArgs | undefined) => void;

/** How often balance may re-evaluate one worker's occupancy (the reference: every 0.5 s or so). */
const REEVALUATE_MS = 500;

/** Small pools scan every worker; bigger ones round-robin (the reference does the same at 20). */
const LINEAR_POOL_LIMIT = 20;

export class SchedulerState {
  readonly options: CompiledSchedulerStateOptions;
  readonly tasks = new Map<Key, TaskState>();
  readonly workers = new Map<Address, WorkerState>();
  readonly clients = new Map<string, ClientState>();
  readonly prefixes = new Map<string, TaskPrefix>();
  readonly groups = new Map<string, TaskGroup>();
  /** Tasks in `no-worker`: ready, but no worker fits. */
  readonly unrunnable = new Set<TaskState>();
  /** Workers with spare threads / clearly below average occupancy. */
  readonly idle = new Set<WorkerState>();
  /** Workers well above average occupancy with queued work. */
  readonly saturated = new Set<WorkerState>();
  /** Workers accepting work (status running). */
  readonly running = new Set<WorkerState>();
  totalOccupancy = 0;
  totalNthreads = 0;
  generation = 0;
  /** Total transitions performed. */
  transitionCounter = 0;
  /** Called after every transition (scheduler plugins); null when nobody listens. Must not throw. */
  transitionHook: ((key: Key, start: string, finish: string, stimulusId: StimulusId) => void) | null = null;
  /** Tasks ever sent to processing (a statistic; nothing decides by it). */
  nTasks = 0;
  /**
   * Calls of leastBusy: where its round-robin among equally busy workers starts. Not nTasks (the
   * reference's): a placement run calls it once per run, and runs whose size is a multiple of the
   * pool's always started at the same worker (with tasks measured at 0 s, a map sent as
   * update-graphs of 1 000 tasks went mostly or wholly to one of two workers).
   */
  private leastBusyTurn = 0;

  /** When the current priority generation started (clock ms). */
  private generationStart = -Infinity;
  private readonly workersByName = new Map<string, WorkerState>();
  private readonly workersByHost = new Map<string, Set<WorkerState>>();
  private runningList: WorkerState[] = [];
  private runningListStale = true;
  private readonly unknownDurations = new Map<string, Set<TaskState>>();
  private readonly log: TransitionLog;
  /** Steal-requests sent and not answered yet; an answer counts only with its request's id. */
  private readonly steals = new Map<TaskState, StealMove & { requestId: StimulusId }>();
  /** When balance last re-evaluated each worker's occupancy (clock ms). */
  private readonly reevaluatedAt = new WeakMap<WorkerState, number>();
  /** Tasks moved by work stealing so far. */
  stolen = 0;
  private readonly outWorkers = new Map<Address, SchedulerToWorkerMsg[]>();
  private readonly outClients = new Map<string, SchedulerToClientMsg[]>();
  /** The transition table: `from` -> `to` -> method (the reference's `(start, finish)` table). */
  private readonly table: ReadonlyMap<string, ReadonlyMap<string, TransitionFn>>;
  /** Finished dependencies of a many-dependency task, released by the next release-deferred stimulus. */
  private deferredReleases: TaskState[] = [];

  constructor(options: SchedulerStateOptions = {}) {
    this.options = compileSchedulerStateOptions(options);
    this.log = new TransitionLog(this.options.transitionLogSize);
    this.clients.set(FIRE_AND_FORGET_CLIENT, new ClientState(FIRE_AND_FORGET_CLIENT, this.options.clock()));
    const table: Record<string, TransitionFn> = {
      'released->waiting': this.transitionReleasedWaiting,
      'released->forgotten': this.transitionReleasedForgotten,
      'released->erred': this.transitionReleasedErred,
      'waiting->released': this.transitionWaitingReleased,
      'waiting->processing': this.transitionWaitingProcessing,
      'no-worker->waiting': this.transitionNoWorkerWaiting,
      'no-worker->released': this.transitionNoWorkerReleased,
      'processing->released': this.transitionProcessingReleased,
      'processing->memory': this.transitionProcessingMemory,
      'processing->erred': this.transitionProcessingErred,
      'memory->released': this.transitionMemoryReleased,
      'memory->forgotten': this.transitionMemoryForgotten,
      'erred->released': this.transitionErredReleased,
      'erred->forgotten': this.transitionErredForgotten,
    };
    // Nested maps: no string building per transition on the hot path.
    const nested = new Map<string, Map<string, TransitionFn>>();
    for (const [pair, fn] of Object.entries(table)) {
      const [from, to] = pair.split('->') as [string, string];
      let m = nested.get(from);
      if (m === undefined) nested.set(from, (m = new Map()));
      m.set(to, fn);
    }
    this.table = nested;
  }

  // -------------------------------------------------------------------------------------------
  // Stimuli

  /** Feed events in order; returns the messages to send, one instruction per destination. */
  handleStimulus(...events: SchedulerEvent[]): Instruction[] {
    return this.handleEvents(events);
  }

  /** handleStimulus for a list of events (any number: no spreading into arguments). */
  handleEvents(events: readonly SchedulerEvent[]): Instruction[] {
    for (const ev of events) this.handleEvent(ev);
    if (this.options.validate) this.validateState();
    return this.flush();
  }

  private handleEvent(ev: SchedulerEvent): void {
    switch (ev.kind) {
      case 'update-graph':
        return this.updateGraph(ev);
      case 'task-finished':
        return this.taskFinished(ev);
      case 'task-erred':
        return this.taskErred(ev);
      case 'missing-data': {
        const ts = this.tasks.get(ev.key);
        const ws = this.workers.get(ev.errantWorker);
        if (ts === undefined || ws === undefined || !ts.whoHas.has(ws)) return;
        this.lostReplicas([ts], ws, ev.stimulusId);
        return;
      }
      case 'release-worker-data': {
        const ws = this.workers.get(ev.worker);
        if (ws === undefined) return;
        const lost: TaskState[] = [];
        for (const key of ev.keys) {
          const ts = this.tasks.get(key);
          if (ts !== undefined && ts.whoHas.has(ws)) lost.push(ts);
        }
        this.lostReplicas(lost, ws, ev.stimulusId);
        return;
      }
      case 'add-keys':
        return this.addKeys(ev);
      case 'add-worker':
        return this.addWorker(ev);
      case 'remove-worker':
        return this.removeWorker(ev);
      case 'worker-heartbeat': {
        const ws = this.workers.get(ev.worker);
        if (ws === undefined) return;
        ws.lastSeen = this.options.clock();
        if (ev.metrics !== undefined) ws.metrics = ev.metrics;
        return;
      }
      case 'worker-paused': {
        const ws = this.workers.get(ev.worker);
        if (ws === undefined || ws.status !== 'running') return;
        ws.status = 'paused';
        this.running.delete(ws);
        this.runningListStale = true;
        this.idle.delete(ws);
        this.saturated.delete(ws);
        return;
      }
      case 'worker-resumed': {
        const ws = this.workers.get(ev.worker);
        if (ws === undefined || ws.status !== 'paused') return;
        ws.status = 'running';
        this.running.add(ws);
        this.runningListStale = true;
        this.checkIdleSaturated(ws);
        this.transitions(this.unrunnableFor(ws), ev.stimulusId);
        return;
      }
      case 'add-client': {
        const cs = this.clients.get(ev.client);
        if (cs === undefined) this.clients.set(ev.client, new ClientState(ev.client, this.options.clock()));
        else cs.lastSeen = this.options.clock();
        return;
      }
      case 'remove-client': {
        if (ev.client === FIRE_AND_FORGET_CLIENT) return;
        const cs = this.clients.get(ev.client);
        if (cs === undefined) return;
        const recs = new Map<Key, TaskStateName>();
        this.clientReleasesKeys(cs, [...cs.wantsWhat].map((t) => t.key), recs);
        this.clients.delete(ev.client);
        this.transitions(recs, ev.stimulusId);
        return;
      }
      case 'client-heartbeat': {
        const cs = this.clients.get(ev.client);
        if (cs !== undefined) cs.lastSeen = this.options.clock();
        return;
      }
      case 'client-desires-keys':
        this.clientDesiresKeys(this.ensureClient(ev.client), ev.keys);
        return;
      case 'client-releases-keys': {
        const cs = this.clients.get(ev.client);
        if (cs === undefined) return;
        const recs = new Map<Key, TaskStateName>();
        this.clientReleasesKeys(cs, ev.keys, recs);
        this.transitions(recs, ev.stimulusId);
        return;
      }
      case 'cancel':
        return this.cancel(ev);
      case 'update-data':
        return this.updateData(ev);
      case 'retry':
        return this.retry(ev);
      case 'balance':
        return this.balance(ev.stimulusId);
      case 'release-deferred':
        return this.releaseDeferred(ev.stimulusId);
      case 'steal-response':
        return this.stealResponse(ev);
      default: {
        const never: never = ev;
        throw new Error(`unknown stimulus ${(never as { kind: string }).kind}`);
      }
    }
  }

  private updateGraph(ev: UpdateGraphEvent): void {
    const sid = ev.stimulusId;
    const cs = this.ensureClient(ev.client);
    // Priority generations (the reference's fifo_timeout): a submission more than its fifo timeout
    // after the start of the current generation starts a new one, so that older work is preferred.
    // The window is measured from the generation's start, not from the previous submission: a
    // steady stream of submissions still moves on to new generations. A timeout of 0 always does.
    const now = this.options.clock();
    const fifo = ev.fifoTimeoutMs ?? this.options.fifoTimeoutMs;
    if (ev.continuation !== true && (fifo <= 0 || now - this.generationStart > fifo)) {
      this.generation += 1;
      this.generationStart = now;
    }
    const userPriority = ev.userPriority ?? 0;

    const defs = new Map<Key, TaskDefinition>();
    const order = new Map<Key, number>();
    for (let i = 0; i < ev.tasks.length; i++) {
      const td = ev.tasks[i] as TaskDefinition;
      defs.set(td.key, td);
      order.set(td.key, td.order ?? i);
    }

    // Drop tasks whose dependencies exist neither in the graph nor in the scheduler (lost data),
    // and, transitively, what depends on them. Usually there are none, and one indexed pass
    // says so: the fixed-point loop below cost 0.8-2.4 us per task of a map (which has no
    // dependencies at all), 8-24 ms per 10 000 tasks.
    const cancelled: Key[] = [];
    let changed = this.hasUnknownDependency(ev.tasks, defs);
    while (changed) {
      changed = false;
      for (const td of defs.values()) {
        if (this.tasks.has(td.key)) continue;
        for (const dep of td.dependencies) {
          if (!defs.has(dep) && !this.tasks.has(dep)) {
            defs.delete(td.key);
            cancelled.push(td.key);
            changed = true;
            break;
          }
        }
      }
    }

    // Walk from the wanted keys through the dependencies of newly defined tasks.
    const touched: TaskState[] = [];
    const defined: TaskState[] = [];
    const seen = new Set<Key>();
    const wanted: Key[] = [];
    const stack: Key[] = [];
    for (const key of ev.keys) {
      if (defs.has(key) || this.tasks.has(key)) {
        stack.push(key);
        wanted.push(key);
      } else if (!cancelled.includes(key)) cancelled.push(key);
    }
    while (stack.length > 0) {
      const key = stack.pop() as Key;
      if (seen.has(key)) continue;
      seen.add(key);
      const td = defs.get(key);
      let ts = this.tasks.get(key);
      let isNew = false;
      if (ts === undefined) {
        if (td === undefined) continue;
        ts = this.newTask(key, td.spec);
        isNew = true;
      } else if (ts.runSpec === null && td !== undefined && ts.whoHas.size === 0) {
        ts.runSpec = td.spec;
        isNew = true;
      }
      touched.push(ts);
      if (isNew && td !== undefined) {
        defined.push(ts);
        this.applyDefinition(ts, td);
        for (const dep of td.dependencies) stack.push(dep);
      }
    }
    for (const ts of defined) {
      const td = defs.get(ts.key) as TaskDefinition;
      if (ts.dependencies.size > 0) continue;
      for (const dep of td.dependencies) {
        const dts = this.tasks.get(dep);
        if (dts === undefined || dts === ts) continue;
        ts.addDependency(dts);
        dts.addDependent(ts);
      }
    }
    for (const ts of touched) {
      if (ts.priority === null) {
        const annotated = ts.annotations?.['priority'];
        const up = typeof annotated === 'number' ? annotated : userPriority;
        ts.priority = [-up, this.generation, order.get(ts.key) ?? 0];
      }
    }

    if (cancelled.length > 0) {
      this.sendClientKeys(cs.id, 'cancelled-keys', cancelled);
      const recs0 = new Map<Key, TaskStateName>();
      this.clientReleasesKeys(cs, cancelled, recs0);
      this.transitions(recs0, sid);
    }

    this.clientDesiresKeys(cs, wanted);

    if (touched.length > 1) touched.sort((a, b) => comparePriority(a.priority, b.priority));
    const recs = new Map<Key, TaskStateName>();
    for (const ts of touched) {
      if (ts.state === 'released' && ts.runSpec !== null) recs.set(ts.key, 'waiting');
    }
    const runs = this.startPlacementRuns(touched);
    try {
      this.transitions(recs, sid);
    } finally {
      for (const g of runs) g.placementRun = null;
    }
  }

  /** Whether a task of a new submission names a dependency that is neither in it nor known here. */
  private hasUnknownDependency(tasks: readonly TaskDefinition[], defs: ReadonlyMap<Key, TaskDefinition>): boolean {
    for (let i = 0; i < tasks.length; i++) {
      const deps = tasks[i]!.dependencies;
      for (let j = 0; j < deps.length; j++) {
        const dep = deps[j]!;
        if (!defs.has(dep) && !this.tasks.has(dep)) return true;
      }
    }
    return false;
  }

  /**
   * Groups with more root-ish tasks in this submission (no dependencies; restrictions are
   * checked where the worker is chosen) than twice the cluster's threads: a map, the leaves of a
   * reduction. Placing them in runs is the reference's Initial Task Placement; see coAssign.
   * Only within the submission: tasks submitted one at a time go to the least busy worker each.
   */
  private startPlacementRuns(touched: readonly TaskState[]): TaskGroup[] {
    const counts = new Map<TaskGroup, number>();
    for (const ts of touched) {
      if (ts.state === 'released' && ts.runSpec !== null && ts.dependencies.size === 0) counts.set(ts.group, (counts.get(ts.group) ?? 0) + 1);
    }
    const runs: TaskGroup[] = [];
    for (const [g, size] of counts) {
      if (size > 2 * this.totalNthreads) {
        g.placementRun = { size, worker: null, left: 0 };
        runs.push(g);
      }
    }
    return runs;
  }

  private applyDefinition(ts: TaskState, td: TaskDefinition): void {
    if (td.workers !== undefined && td.workers.length > 0) {
      ts.restrictions = new Set(td.workers);
    }
    ts.looseRestrictions = td.allowOtherWorkers === true;
    if (td.resources !== undefined && Object.keys(td.resources).length > 0) {
      ts.resourceRestrictions = { ...td.resources };
    }
    if (td.retries !== undefined) ts.retries = Math.max(0, td.retries | 0);
    if (td.annotations !== undefined) ts.annotations = td.annotations;
  }

  private taskFinished(ev: TaskFinishedEvent): void {
    const ws = this.workers.get(ev.worker);
    if (ws === undefined) return;
    const ts = this.tasks.get(ev.key);
    if (ts === undefined || ts.state === 'released') {
      this.sendFreeKey(ws.address, ev.key, ev.stimulusId);
      return;
    }
    if (ts.state === 'processing' && ts.processingOn === ws) {
      const recs = new Map<Key, TaskStateName>();
      this.transition(ts.key, 'memory', ev.stimulusId, recs, {
        worker: ws,
        nbytes: ev.nbytes,
        type: ev.type,
        startstops: ev.startstops,
        value: ev.value,
      });
      this.transitions(recs, ev.stimulusId);
    } else if (ts.state === 'memory') {
      if (!ts.whoHas.has(ws)) this.addReplica(ts, ws);
    } else {
      // Computed by a worker it is no longer assigned to (rescheduled, or stale): drop the copy.
      this.sendFreeKey(ws.address, ev.key, ev.stimulusId);
    }
  }

  private taskErred(ev: TaskErredEvent): void {
    const ws = this.workers.get(ev.worker);
    if (ws === undefined) return;
    const ts = this.tasks.get(ev.key);
    if (ts === undefined || ts.state !== 'processing' || ts.processingOn !== ws) {
      if (ts === undefined || ts.state === 'released') this.sendFreeKey(ws.address, ev.key, ev.stimulusId);
      return;
    }
    const recs = new Map<Key, TaskStateName>();
    if (ts.retries > 0) {
      ts.retries -= 1;
      this.transition(ts.key, 'waiting', ev.stimulusId, recs);
    } else {
      this.transition(ts.key, 'erred', ev.stimulusId, recs, { exception: ev.exception, cause: ts, worker: ws });
    }
    this.transitions(recs, ev.stimulusId);
  }

  private addKeys(ev: AddKeysEvent): void {
    const ws = this.workers.get(ev.worker);
    if (ws === undefined) return;
    const redundant: Key[] = [];
    for (const key of ev.keys) {
      const ts = this.tasks.get(key);
      if (ts !== undefined && ts.state === 'memory') {
        if (ts.nbytes < 0) {
          const n = ev.nbytes?.[key];
          if (typeof n === 'number' && n >= 0) this.setNbytes(ts, n);
        }
        if (!ts.whoHas.has(ws)) this.addReplica(ts, ws);
      } else {
        redundant.push(key);
      }
    }
    if (redundant.length > 0) {
      this.sendWorker(ws.address, { op: 'remove-replicas', keys: redundant, stimulusId: ev.stimulusId });
    }
  }

  private addWorker(ev: AddWorkerEvent): void {
    if (this.workers.has(ev.address)) return;
    const ws = new WorkerState(ev, this.options.clock());
    this.workers.set(ws.address, ws);
    this.workersByName.set(ws.name, ws);
    let hostSet = this.workersByHost.get(ws.host);
    if (hostSet === undefined) this.workersByHost.set(ws.host, (hostSet = new Set()));
    hostSet.add(ws);
    this.totalNthreads += ws.nthreads;
    this.running.add(ws);
    this.runningListStale = true;
    this.checkIdleSaturated(ws);

    if (ev.nbytes !== undefined) {
      const unknown: Key[] = [];
      for (const [key, n] of Object.entries(ev.nbytes)) {
        const ts = this.tasks.get(key);
        if (ts !== undefined && ts.state === 'memory') {
          if (ts.nbytes < 0 && n >= 0) this.setNbytes(ts, n);
          this.addReplica(ts, ws);
        } else {
          unknown.push(key);
        }
      }
      if (unknown.length > 0) this.sendWorker(ws.address, { op: 'free-keys', keys: unknown, stimulusId: ev.stimulusId });
    }
    this.transitions(this.unrunnableFor(ws), ev.stimulusId);
  }

  /** Recommendations moving `no-worker` tasks that `ws` could run back to `waiting`. */
  private unrunnableFor(ws: WorkerState): Map<Key, TaskStateName> {
    const recs = new Map<Key, TaskStateName>();
    if (this.unrunnable.size === 0) return recs;
    const sorted = [...this.unrunnable].sort((a, b) => comparePriority(a.priority, b.priority));
    for (const ts of sorted) {
      const valid = this.validWorkers(ts);
      if (valid === null || valid.has(ws) || ts.looseRestrictions) recs.set(ts.key, 'waiting');
    }
    return recs;
  }

  private removeWorker(ev: RemoveWorkerEvent): void {
    const ws = this.workers.get(ev.address);
    if (ws === undefined) return;
    const sid = ev.stimulusId;
    this.workers.delete(ws.address);
    if (this.workersByName.get(ws.name) === ws) this.workersByName.delete(ws.name);
    const hostSet = this.workersByHost.get(ws.host);
    hostSet?.delete(ws);
    if (hostSet !== undefined && hostSet.size === 0) this.workersByHost.delete(ws.host);
    this.running.delete(ws);
    this.runningListStale = true;
    this.idle.delete(ws);
    this.saturated.delete(ws);
    this.totalNthreads -= ws.nthreads;
    this.changeTotalOccupancy(-ws.occupancy);
    if (this.workers.size === 0) this.totalOccupancy = 0;
    ws.status = 'closing';

    const recs = new Map<Key, TaskStateName>();
    for (const ts of [...ws.processing.keys()]) {
      if (ev.safe !== true) {
        ts.suspicious += 1;
        ts.prefix.suspicious += 1;
        if (ts.suspicious >= this.options.allowedFailures) {
          this.transition(ts.key, 'erred', sid, recs, {
            exception: killedWorkerError(ts.key, ws.address, ts.suspicious),
            cause: ts,
          });
          continue;
        }
      }
      recs.set(ts.key, 'released');
    }
    for (const ts of ws.hasWhat) {
      ts.whoHas.delete(ws);
      if (ts.whoHas.size === 0) recs.set(ts.key, 'released');
    }
    ws.hasWhat.clear();
    ws.nbytes = 0;
    // The others may be fetching from it, and if it froze rather than closed, their transfers
    // would wait for a reply that never comes: they drop their connections to it.
    for (const other of this.workers.keys()) this.sendWorker(other, { op: 'remove-worker', worker: ws.address, stimulusId: sid });
    this.transitions(recs, sid);
  }

  private cancel(ev: CancelEvent): void {
    const cs = this.clients.get(ev.client);
    if (cs === undefined) return;
    const force = ev.force === true;
    const recs = new Map<Key, TaskStateName>();
    const done = new Set<TaskState>();
    const cancelKey = (ts: TaskState): void => {
      if (done.has(ts)) return;
      done.add(ts);
      if (ts.wantedBy.size === 0) return;
      const onlyUs = ts.wantedBy.size === 1 && ts.wantedBy.has(cs);
      if (force || onlyUs) for (const dts of ts.dependents) cancelKey(dts);
      const clients = force ? [...ts.wantedBy] : ts.wantedBy.has(cs) ? [cs] : [];
      for (const c of clients) {
        this.sendClientKeys(c.id, 'cancelled-keys', [ts.key]);
        this.clientReleasesKeys(c, [ts.key], recs);
      }
    };
    for (const key of ev.keys) {
      const ts = this.tasks.get(key);
      if (ts !== undefined) cancelKey(ts);
    }
    this.transitions(recs, ev.stimulusId);
  }

  private updateData(ev: UpdateDataEvent): void {
    const cs = this.ensureClient(ev.client);
    const keys: Key[] = [];
    for (const [key, addresses] of Object.entries(ev.whoHas)) {
      const holders: WorkerState[] = [];
      for (const a of addresses) {
        const ws = this.workers.get(a);
        if (ws !== undefined) holders.push(ws);
      }
      if (holders.length === 0) continue;
      let ts = this.tasks.get(key);
      // Already being computed (or erred): the client's future follows that computation.
      if (ts !== undefined && ts.state !== 'memory' && ts.state !== 'released') {
        keys.push(key);
        continue;
      }
      const n = ev.nbytes[key];
      if (ts === undefined) ts = this.newTask(key, null);
      if (typeof n === 'number' && n >= 0) this.setNbytes(ts, n);
      if (ts.state === 'released') {
        ts.priority ??= [0, this.generation, 0];
        if (!ts.wantedBy.has(cs)) {
          ts.addWantedBy(cs);
          cs.wantsWhat.add(ts);
        }
        const ws0 = holders[0] as WorkerState;
        // Released -> memory happens only here (data arrived from outside): same effects as a
        // task finishing on the first holder.
        this.logTransition(ts.key, 'released', 'memory', [], ev.stimulusId);
        const recs = new Map<Key, TaskStateName>();
        const local: Recs = [];
        this.addToMemory(ts, ws0, local, undefined);
        for (let i = 0; i < local.length; i += 2) recs.set(local[i] as string, local[i + 1] as TaskStateName);
        for (const ws of holders) if (!ts.whoHas.has(ws)) this.addReplica(ts, ws);
        if (this.options.validate) this.validateTask(ts);
        this.transitions(recs, ev.stimulusId);
      } else {
        for (const ws of holders) if (!ts.whoHas.has(ws)) this.addReplica(ts, ws);
        keys.push(key);
      }
    }
    this.clientDesiresKeys(cs, keys);
  }

  private retry(ev: RetryEvent): void {
    const recs = new Map<Key, TaskStateName>();
    const seen = new Set<TaskState>();
    const stack: TaskState[] = [];
    for (const key of ev.keys) {
      const ts = this.tasks.get(key);
      if (ts !== undefined && ts.state === 'erred') stack.push(ts);
    }
    while (stack.length > 0) {
      const ts = stack.pop() as TaskState;
      if (seen.has(ts)) continue;
      seen.add(ts);
      let erredDeps = false;
      for (const dts of ts.dependencies) {
        if (dts.state === 'erred') {
          erredDeps = true;
          stack.push(dts);
        }
      }
      if (!erredDeps) recs.set(ts.key, 'waiting');
    }
    this.transitions(recs, ev.stimulusId);
  }

  private clientDesiresKeys(cs: ClientState, keys: Iterable<Key>): void {
    for (const key of keys) {
      const ts = this.tasks.get(key);
      if (ts === undefined) {
        this.sendClientKeys(cs.id, 'cancelled-keys', [key]);
        continue;
      }
      if (!ts.wantedBy.has(cs)) {
        ts.addWantedBy(cs);
        cs.wantsWhat.add(ts);
      }
      this.reportOnKey(ts, cs);
    }
  }

  private reportOnKey(ts: TaskState, cs: ClientState, value?: InlineValue): void {
    if (ts.state === 'memory') {
      const msg: KeyInMemoryMsg = ts.type !== null ? { op: 'key-in-memory', key: ts.key, type: ts.type } : { op: 'key-in-memory', key: ts.key };
      if (value !== undefined) msg.value = value;
      this.sendClient(cs.id, msg);
    } else if (ts.state === 'erred') {
      const blame = ts.exceptionBlame ?? ts;
      this.sendClient(cs.id, { op: 'task-erred', key: ts.key, exception: blame.exception ?? unknownError(ts.key) });
    }
  }

  private clientReleasesKeys(cs: ClientState, keys: Iterable<Key>, recs: Map<Key, TaskStateName>): void {
    for (const key of keys) {
      const ts = this.tasks.get(key);
      if (ts === undefined || !cs.wantsWhat.has(ts)) continue;
      cs.wantsWhat.delete(ts);
      ts.wantedBy.delete(cs);
      if (ts.wantedBy.size > 0) continue;
      if (ts.dependents.size === 0) recs.set(ts.key, 'forgotten');
      else if (ts.state !== 'erred' && ts.waiters.size === 0) recs.set(ts.key, 'released');
    }
  }

  private ensureClient(id: string): ClientState {
    let cs = this.clients.get(id);
    if (cs === undefined) {
      cs = new ClientState(id, this.options.clock());
      this.clients.set(id, cs);
    }
    return cs;
  }

  /** Remove replicas `ws` lost (missing data, released by the worker); recompute or lose keys left with none. */
  private lostReplicas(tss: TaskState[], ws: WorkerState, stimulusId: StimulusId): void {
    const recs = new Map<Key, TaskStateName>();
    for (const ts of tss) {
      this.removeReplica(ts, ws);
      if (ts.whoHas.size === 0 && ts.state === 'memory') recs.set(ts.key, 'released');
    }
    this.transitions(recs, stimulusId);
  }

  // -------------------------------------------------------------------------------------------
  // The transition engine

  /** Run recommendations (and those they produce) until none are left. */
  transitions(recs: Map<Key, TaskStateName>, stimulusId: StimulusId): void {
    if (recs.size === 0) return;
    let count = 0;
    const budget = 10_000 + 50 * (this.tasks.size + recs.size);
    for (const key of recs.keys()) {
      const finish = recs.get(key) as TaskStateName;
      recs.delete(key);
      if (++count > budget) {
        throw new TransitionCounterMaxExceededError(key, count, this.story(key));
      }
      this.transition(key, finish, stimulusId, recs);
    }
  }

  /** Move one key towards `finish`, adding what it recommends next to `recs`. */
  transition(
    key: Key,
    finish: TaskStateName,
    stimulusId: StimulusId,
    recs: Map<Key, TaskStateName>,
    args?: TransitionArgs,
  ): void {
    const ts = this.tasks.get(key);
    if (ts === undefined) return;
    const start = ts.state;
    if (start === finish) return;
    // Memory is released when nothing needs it or when its last copy is gone. A recommendation
    // to release a task that is held and needed again is stale: a retried task drops itself as
    // its inputs' waiter and adds itself back in the same stimulus, and releasing an input then
    // left the task processing without it (found by the fuzz test with wide fan-ins).
    if (start === 'memory' && finish === 'released' && ts.whoHas.size > 0 && (ts.waiters.size > 0 || ts.wantedBy.size > 0)) return;
    const local: Recs = [];
    const fn = this.table.get(start)?.get(finish);
    if (fn !== undefined) {
      fn.call(this, ts, local, stimulusId, args);
      this.transitionCounter += 1;
      this.logTransition(key, start, ts.state, local, stimulusId);
    } else {
      const toReleased = this.table.get(start)?.get('released');
      const fromReleased = this.table.get('released')?.get(finish);
      if (start === 'released' || finish === 'released' || toReleased === undefined || fromReleased === undefined) {
        throw new InvalidTransitionError(key, start, finish, this.story(key));
      }
      toReleased.call(this, ts, local, stimulusId, undefined);
      this.transitionCounter += 1;
      this.logTransition(key, start, ts.state, local, stimulusId); // copied: local changes below
      // What the first half recommends for the key itself wins (e.g. forgotten on lost deps).
      const next = (recGet(local, key) ?? finish) as TaskStateName;
      for (let i = 0; i < local.length; i += 2) if (local[i] === key) local[i] = '';
      if (ts.state === 'released' && next !== 'released') {
        const fn2 = this.table.get('released')?.get(next);
        if (fn2 === undefined) throw new InvalidTransitionError(key, 'released', next, this.story(key));
        const local2: Recs = [];
        fn2.call(this, ts, local2, stimulusId, args);
        this.transitionCounter += 1;
        this.logTransition(key, 'released', ts.state, local2, stimulusId);
        for (let i = 0; i < local2.length; i++) local.push(local2[i] as string);
      }
    }
    for (let i = 0; i < local.length; i += 2) {
      const k = local[i] as string;
      if (k !== '') recs.set(k, local[i + 1] as TaskStateName);
    }
    if (this.options.validate && ts.state !== 'forgotten') this.validateTask(ts);
  }

  private logTransition(key: Key, start: string, finish: string, recs: Recs, stimulusId: StimulusId): void {
    if (this.transitionHook !== null) this.transitionHook(key, start, finish, stimulusId);
    this.log.push(key, start, finish, recs, stimulusId, this.options.clock());
  }

  /** Transition log rows that mention any of `keys` (as the key moved or as a recommendation). */
  story(...keys: Key[]): StoryEntry[] {
    const want = new Set(keys);
    const out: StoryEntry[] = [];
    this.log.forEach((key, start, finish, recs, stimulusId, time) => {
      let hit = want.has(key);
      const r = recs ?? [];
      for (let j = 0; !hit && j < r.length; j += 2) hit = want.has(r[j] as string);
      if (hit) out.push([key, start, finish, recsToRecord(r), stimulusId, time]);
    });
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Transitions (one method per `from->to` pair)

  private transitionReleasedWaiting(ts: TaskState, recs: Recs): void {
    // Nothing wants it and nothing depends on it: a recommendation to compute it is stale (e.g.
    // a dependency's retry un-erring it in the stimulus that forgot its last dependent; found by
    // the fuzz test), and it would wait there for ever.
    if (ts.hasLostDependencies || ts.runSpec === null || (ts.wantedBy.size === 0 && ts.dependents.size === 0)) {
      recs.push(ts.key, 'forgotten');
      return;
    }
    for (const dts of ts.dependencies) {
      if (dts.exceptionBlame !== null) {
        // Stays released; released->erred follows.
        ts.exceptionBlame = dts.exceptionBlame;
        recs.push(ts.key, 'erred');
        return;
      }
    }
    this.setState(ts, 'waiting');
    for (const dts of ts.dependencies) {
      if (dts.whoHas.size === 0) ts.addWaitingOn(dts);
      if (dts.state === 'released') recs.push(dts.key, 'waiting');
      else dts.addWaiter(ts);
    }
    clearIfAny(ts.waiters);
    for (const dts of ts.dependents) if (dts.state === 'waiting') ts.addWaiter(dts);
    if (ts.waitingOn.size === 0) this.readyToRun(ts, recs);
  }

  private readyToRun(ts: TaskState, recs: Recs): void {
    if (this.running.size > 0) recs.push(ts.key, 'processing');
    else {
      this.setState(ts, 'no-worker');
      this.unrunnable.add(ts);
    }
  }

  private transitionNoWorkerWaiting(ts: TaskState, recs: Recs): void {
    this.unrunnable.delete(ts);
    this.setState(ts, 'waiting');
    if (ts.hasLostDependencies) {
      recs.push(ts.key, 'forgotten');
      return;
    }
    for (const dts of ts.dependencies) {
      if (dts.whoHas.size === 0) ts.addWaitingOn(dts);
      if (dts.state === 'released') recs.push(dts.key, 'waiting');
      else dts.addWaiter(ts);
    }
    if (ts.waitingOn.size === 0) this.readyToRun(ts, recs);
  }

  private transitionWaitingProcessing(ts: TaskState, recs: Recs, stimulusId: StimulusId): void {
    const ws = this.decideWorker(ts);
    if (ws === null) {
      this.setState(ts, 'no-worker');
      this.unrunnable.add(ts);
      return;
    }
    void recs;
    this.assign(ts, ws, stimulusId);
  }

  /** Make `ts` processing on `ws` and send it there. */
  private assign(ts: TaskState, ws: WorkerState, stimulusId: StimulusId): void {
    const cost = this.taskDuration(ts) + this.commCost(ts, ws);
    ws.processing.set(ts, cost);
    ws.occupancy += cost;
    this.changeTotalOccupancy(cost);
    ts.processingOn = ws;
    this.setState(ts, 'processing');
    if (ts.resourceRestrictions !== null) {
      for (const [r, q] of Object.entries(ts.resourceRestrictions)) ws.usedResources[r] = (ws.usedResources[r] ?? 0) + q;
    }
    this.checkIdleSaturated(ws);
    this.nTasks += 1;
    this.sendWorker(ws.address, this.computeTaskMsg(ts, ws, stimulusId));
  }

  private computeTaskMsg(ts: TaskState, ws: WorkerState, stimulusId: StimulusId): ComputeTaskMsg {
    const msg: ComputeTaskMsg = {
      op: 'compute-task',
      key: ts.key,
      spec: ts.runSpec as NonNullable<TaskState['runSpec']>,
      priority: ts.priority ?? [0, 0, 0],
      duration: this.taskDuration(ts),
      stimulusId,
    };
    if (ts.dependencies.size > 0) msg.dependencies = this.taskDependencies(ts, ws);
    if (ts.resourceRestrictions !== null) msg.resources = ts.resourceRestrictions;
    if (ts.annotations !== null) msg.annotations = ts.annotations;
    return msg;
  }

  /**
   * A compute-task's dependencies for `ws`. Holders other than `ws` only: a worker never fetches
   * from itself, so a dependency it holds alone lists no one.
   */
  private taskDependencies(ts: TaskState, ws: WorkerState): TaskDependencies {
    const n = ts.dependencies.size;
    const keys = new Array<Key>(n);
    const nbytes = new Array<number>(n);
    const whoHas = new Array<number[]>(n);
    const holders: Address[] = [];
    const holderIndex = new Map<WorkerState, number>();
    const defaultSize = this.options.defaultDataSize;
    let i = 0;
    for (const dts of ts.dependencies) {
      const at: number[] = [];
      for (const w of dts.whoHas) {
        if (w === ws) continue;
        let h = holderIndex.get(w);
        if (h === undefined) {
          h = holders.length;
          holders.push(w.address);
          holderIndex.set(w, h);
        }
        at.push(h);
      }
      keys[i] = dts.key;
      nbytes[i] = dts.getNbytes(defaultSize);
      whoHas[i] = at;
      i++;
    }
    return { keys, nbytes, holders, whoHas };
  }

  private transitionWaitingReleased(ts: TaskState, recs: Recs): void {
    for (const dts of ts.dependencies) {
      if (dts.waiters.delete(ts) && dts.waiters.size === 0 && dts.wantedBy.size === 0) recs.push(dts.key, 'released');
    }
    clearIfAny(ts.waitingOn);
    this.setState(ts, 'released');
    if (ts.hasLostDependencies) recs.push(ts.key, 'forgotten');
    else if (ts.exceptionBlame === null && (ts.wantedBy.size > 0 || ts.waiters.size > 0)) recs.push(ts.key, 'waiting');
    else clearIfAny(ts.waiters);
  }

  private transitionNoWorkerReleased(ts: TaskState, recs: Recs): void {
    this.unrunnable.delete(ts);
    for (const dts of ts.dependencies) {
      if (dts.waiters.delete(ts) && dts.waiters.size === 0 && dts.wantedBy.size === 0) recs.push(dts.key, 'released');
    }
    clearIfAny(ts.waitingOn);
    clearIfAny(ts.waiters);
    this.setState(ts, 'released');
    if (ts.hasLostDependencies) recs.push(ts.key, 'forgotten');
  }

  private transitionProcessingReleased(ts: TaskState, recs: Recs, stimulusId: StimulusId): void {
    const ws = this.removeFromProcessing(ts);
    if (ws !== null) this.sendFreeKey(ws.address, ts.key, stimulusId);
    this.setState(ts, 'released');
    if (ts.hasLostDependencies) recs.push(ts.key, 'forgotten');
    else if (ts.exceptionBlame === null && (ts.waiters.size > 0 || ts.wantedBy.size > 0)) recs.push(ts.key, 'waiting');
    if (recGet(recs, ts.key) !== 'waiting') {
      for (const dts of ts.dependencies) {
        if (dts.state === 'released') continue;
        if (dts.waiters.delete(ts) && dts.waiters.size === 0 && dts.wantedBy.size === 0) recs.push(dts.key, 'released');
      }
      clearIfAny(ts.waiters);
    }
  }

  private transitionProcessingMemory(ts: TaskState, recs: Recs, _sid: StimulusId, args: TransitionArgs | undefined): void {
    const ws = args?.worker;
    if (ws === undefined || ws !== ts.processingOn) {
      throw new InvalidTransitionError(ts.key, 'processing', 'memory (no or wrong worker)', this.story(ts.key));
    }
    if (args?.startstops !== undefined) this.recordTimings(ts, args.startstops);
    if (args?.nbytes !== undefined && args.nbytes >= 0) this.setNbytes(ts, args.nbytes);
    this.removeFromProcessing(ts);
    this.addToMemory(ts, ws, recs, args?.type, args?.value);
  }

  private recordTimings(ts: TaskState, startstops: StartStop[]): void {
    let compute = -1;
    const all = ts.prefix.allDurations;
    for (const ss of startstops) {
      const seconds = Math.max(0, (ss.stop - ss.start) / 1000);
      all[ss.action] = (all[ss.action] ?? 0) + seconds;
      if (ss.action === 'compute' && compute < 0) compute = seconds;
    }
    if (compute < 0) return;
    const prefix = ts.prefix;
    const avg = prefix.durationAverage < 0 ? compute : 0.5 * prefix.durationAverage + 0.5 * compute;
    prefix.durationAverage = avg;
    ts.group.duration += compute;
    const unknown = this.unknownDurations.get(prefix.name);
    if (unknown !== undefined) {
      this.unknownDurations.delete(prefix.name);
      for (const tts of unknown) {
        const wws = tts.processingOn;
        if (wws === null || tts === ts) continue;
        const old = wws.processing.get(tts) ?? 0;
        const cost = avg + this.commCost(tts, wws);
        wws.processing.set(tts, cost);
        wws.occupancy += cost - old;
        this.changeTotalOccupancy(cost - old);
      }
    }
  }

  private addToMemory(ts: TaskState, ws: WorkerState, recs: Recs, type: string | undefined, value?: InlineValue): void {
    this.addReplica(ts, ws);
    if (ts.dependents.size > 0) {
      const deps = ts.dependents.size > 1 ? [...ts.dependents].sort((a, b) => comparePriority(a.priority, b.priority)) : ts.dependents;
      for (const dts of deps) {
        if (dts.waitingOn.delete(ts) && dts.waitingOn.size === 0 && dts.state === 'waiting') recs.push(dts.key, 'processing');
      }
    }
    // A task with many dependencies (the sum over a map) lets those in memory go in a later
    // stimulus (release-deferred): freeing 10 000 of them took ~50 ms, all before the task's own
    // result went to its client. Only here: a task that errs or is released has no result to
    // report first, and a dependency not in memory (lost, being recomputed) is released now.
    const defer = ts.dependencies.size > DEFER_RELEASES_ABOVE;
    for (const dts of ts.dependencies) {
      if (dts.waiters.delete(ts) && dts.waiters.size === 0 && dts.wantedBy.size === 0) {
        if (defer && dts.state === 'memory') this.deferredReleases.push(dts);
        else recs.push(dts.key, 'released');
      }
    }
    this.setState(ts, 'memory');
    if (type !== undefined) {
      ts.type = type;
      ts.group.types.add(type);
    }
    if (ts.waiters.size === 0 && ts.wantedBy.size === 0) {
      recs.push(ts.key, 'released');
    } else {
      for (const cs of ts.wantedBy) this.reportOnKey(ts, cs, value);
    }
    this.releaseFireAndForget(ts, recs);
  }

  /** Tasks left in memory for a release-deferred stimulus (see addToMemory). */
  get deferredReleaseCount(): number {
    return this.deferredReleases.length;
  }

  /**
   * Releases what addToMemory deferred and is still that task in memory (a key may have been
   * forgotten and made again meanwhile). transition() drops the release of one needed again.
   */
  private releaseDeferred(stimulusId: StimulusId): void {
    const pending = this.deferredReleases;
    if (pending.length === 0) return;
    this.deferredReleases = [];
    const recs = new Map<Key, TaskStateName>();
    for (const ts of pending) if (this.tasks.get(ts.key) === ts && ts.state === 'memory') recs.set(ts.key, 'released');
    this.transitions(recs, stimulusId);
  }

  private releaseFireAndForget(ts: TaskState, recs: Recs): void {
    const ff = this.clients.get(FIRE_AND_FORGET_CLIENT);
    if (ff === undefined || !ff.wantsWhat.has(ts)) return;
    const m = new Map<Key, TaskStateName>();
    this.clientReleasesKeys(ff, [ts.key], m);
    for (const [k, v] of m) recs.push(k, v);
  }

  private transitionProcessingErred(ts: TaskState, recs: Recs, _sid: StimulusId, args: TransitionArgs | undefined): void {
    this.removeFromProcessing(ts);
    if (args?.worker !== undefined) ts.addErredOn(args.worker);
    if (args?.exception !== undefined) ts.exception = args.exception;
    const failing = args?.cause ?? ts.exceptionBlame ?? ts;
    if (failing === ts && ts.exception === null) ts.exception = unknownError(ts.key);
    ts.exceptionBlame = failing;
    this.erredCommon(ts, failing, recs);
  }

  private transitionReleasedErred(ts: TaskState, recs: Recs): void {
    const failing = ts.exceptionBlame;
    if (failing === null) throw new InvalidTransitionError(ts.key, 'released', 'erred (nothing to blame)', this.story(ts.key));
    this.erredCommon(ts, failing, recs);
  }

  private erredCommon(ts: TaskState, failing: TaskState, recs: Recs): void {
    for (const dts of ts.dependents) {
      if (dts.whoHas.size === 0) {
        dts.exceptionBlame = failing;
        recs.push(dts.key, 'erred');
      }
    }
    for (const dts of ts.dependencies) {
      if (dts.waiters.delete(ts) && dts.waiters.size === 0 && dts.wantedBy.size === 0) recs.push(dts.key, 'released');
    }
    clearIfAny(ts.waiters);
    clearIfAny(ts.waitingOn);
    this.setState(ts, 'erred');
    for (const cs of ts.wantedBy) this.reportOnKey(ts, cs);
    this.releaseFireAndForget(ts, recs);
  }

  private transitionErredReleased(ts: TaskState, recs: Recs, stimulusId: StimulusId): void {
    ts.exception = null;
    ts.exceptionBlame = null;
    for (const dts of ts.dependents) if (dts.state === 'erred') recs.push(dts.key, 'waiting');
    for (const ws of ts.erredOn) if (this.workers.get(ws.address) === ws) this.sendFreeKey(ws.address, ts.key, stimulusId);
    clearIfAny(ts.erredOn);
    this.setState(ts, 'released');
  }

  private transitionMemoryReleased(ts: TaskState, recs: Recs, stimulusId: StimulusId): void {
    for (const dts of ts.waiters) {
      if (dts.state === 'no-worker' || dts.state === 'processing') recs.push(dts.key, 'waiting');
      else if (dts.state === 'waiting') dts.addWaitingOn(ts);
    }
    for (const ws of [...ts.whoHas]) {
      this.removeReplica(ts, ws);
      this.sendFreeKey(ws.address, ts.key, stimulusId);
    }
    this.setState(ts, 'released');
    if (ts.runSpec === null) {
      // Pure data (scattered) with no copy left cannot be recomputed: its futures are lost.
      for (const cs of ts.wantedBy) {
        this.sendClient(cs.id, { op: 'lost-data', key: ts.key });
        cs.wantsWhat.delete(ts);
      }
      clearIfAny(ts.wantedBy);
      recs.push(ts.key, 'forgotten');
    } else if (ts.hasLostDependencies) {
      recs.push(ts.key, 'forgotten');
    } else if (ts.wantedBy.size > 0 || ts.waiters.size > 0) {
      recs.push(ts.key, 'waiting');
    }
  }

  private transitionMemoryForgotten(ts: TaskState, recs: Recs, stimulusId: StimulusId): void {
    const lost = ts.whoHas.size === 0;
    for (const ws of [...ts.whoHas]) {
      this.removeReplica(ts, ws);
      this.sendFreeKey(ws.address, ts.key, stimulusId);
    }
    if (lost) {
      for (const cs of ts.wantedBy) {
        this.sendClient(cs.id, { op: 'lost-data', key: ts.key });
        cs.wantsWhat.delete(ts);
      }
      clearIfAny(ts.wantedBy);
    }
    this.forget(ts, recs);
  }

  private transitionReleasedForgotten(ts: TaskState, recs: Recs): void {
    this.forget(ts, recs);
  }

  private transitionErredForgotten(ts: TaskState, recs: Recs, stimulusId: StimulusId): void {
    for (const ws of ts.erredOn) if (this.workers.get(ws.address) === ws) this.sendFreeKey(ws.address, ts.key, stimulusId);
    clearIfAny(ts.erredOn);
    this.forget(ts, recs);
  }

  private forget(ts: TaskState, recs: Recs): void {
    for (const dts of ts.dependents) {
      dts.hasLostDependencies = true;
      dts.dependencies.delete(ts);
      dts.waitingOn.delete(ts);
      if (dts.state !== 'memory' && dts.state !== 'erred') recs.push(dts.key, 'forgotten');
    }
    clearIfAny(ts.dependents);
    clearIfAny(ts.waiters);
    for (const dts of ts.dependencies) {
      dts.dependents.delete(ts);
      dts.waiters.delete(ts);
      if (dts.dependents.size === 0 && dts.wantedBy.size === 0) recs.push(dts.key, 'forgotten');
    }
    clearIfAny(ts.dependencies);
    clearIfAny(ts.waitingOn);
    if (ts.wantedBy.size > 0) {
      for (const cs of ts.wantedBy) {
        this.sendClientKeys(cs.id, 'cancelled-keys', [ts.key]);
        cs.wantsWhat.delete(ts);
      }
      ts.wantedBy.clear();
    }
    this.unrunnable.delete(ts);
    this.unknownDurations.get(ts.prefix.name)?.delete(ts);
    ts.exceptionBlame = null;
    ts.exception = null;
    ts.processingOn = null;
    this.setState(ts, 'forgotten');
    this.tasks.delete(ts.key);
    const g = ts.group;
    if (g.total === g.states.forgotten && this.groups.get(g.name) === g) this.groups.delete(g.name);
  }

  // -------------------------------------------------------------------------------------------
  // Bookkeeping helpers

  private newTask(key: Key, runSpec: TaskState['runSpec']): TaskState {
    // A key that is not a tuple is its own group's prefix: split once (a map's 32-hex-digit
    // tokens were scanned twice per task).
    const gname = keyGroup(key);
    const pname = key.charCodeAt(0) === 91 /* [ */ ? keySplit(key) : gname;
    let prefix = this.prefixes.get(pname);
    if (prefix === undefined) this.prefixes.set(pname, (prefix = new TaskPrefix(pname)));
    let group = this.groups.get(gname);
    if (group === undefined) this.groups.set(gname, (group = new TaskGroup(gname, prefix)));
    prefix.count += 1;
    const ts = new TaskState(key, runSpec, prefix, group);
    group.states.released += 1;
    group.total += 1;
    this.tasks.set(key, ts);
    return ts;
  }

  private setState(ts: TaskState, state: TaskStateName): void {
    const g = ts.group.states;
    g[ts.state] -= 1;
    g[state] += 1;
    ts.state = state;
  }

  private setNbytes(ts: TaskState, n: number): void {
    const d = this.options.defaultDataSize;
    const old = ts.getNbytes(d);
    ts.nbytes = n;
    const diff = n - old;
    if (diff !== 0 && ts.whoHas.size > 0) {
      for (const ws of ts.whoHas) ws.nbytes += diff;
      ts.group.nbytesInMemory += diff;
    }
  }

  private addReplica(ts: TaskState, ws: WorkerState): void {
    if (ts.whoHas.has(ws)) return;
    const n = ts.getNbytes(this.options.defaultDataSize);
    ts.addHolder(ws);
    ws.hasWhat.add(ts);
    ws.nbytes += n;
    if (ts.whoHas.size === 1) ts.group.nbytesInMemory += n;
  }

  private removeReplica(ts: TaskState, ws: WorkerState): void {
    if (!ts.whoHas.delete(ws)) return;
    const n = ts.getNbytes(this.options.defaultDataSize);
    ws.hasWhat.delete(ts);
    ws.nbytes -= n;
    if (ts.whoHas.size === 0) ts.group.nbytesInMemory -= n;
  }

  /** Undo processing bookkeeping; returns the worker if it is still connected. */
  private removeFromProcessing(ts: TaskState): WorkerState | null {
    const ws = ts.processingOn;
    ts.processingOn = null;
    if (ws === null) return null;
    // Its steal, if any, is over (an answer about it will find none).
    if (this.steals.size > 0) this.steals.delete(ts);
    const cost = ws.processing.get(ts) ?? 0;
    ws.processing.delete(ts);
    this.unknownDurations.get(ts.prefix.name)?.delete(ts);
    if (this.workers.get(ws.address) !== ws) return null;
    if (ws.processing.size === 0) {
      this.changeTotalOccupancy(-ws.occupancy);
      ws.occupancy = 0;
    } else {
      this.changeTotalOccupancy(-cost);
      ws.occupancy -= cost;
    }
    if (ts.resourceRestrictions !== null) {
      for (const [r, q] of Object.entries(ts.resourceRestrictions)) ws.usedResources[r] = (ws.usedResources[r] ?? 0) - q;
    }
    this.checkIdleSaturated(ws);
    return ws;
  }

  /**
   * Every change of totalOccupancy goes through here (removeWorker also resets it to 0 with the
   * last worker). Adding and subtracting the same costs in
   * other orders leaves a rounding residue once the queues are empty, and a positive one made each
   * worker with zero occupancy (tasks measured at 0 s) count as idle however many tasks it held
   * (checkIdleSaturated): anything under 1e-12 s is taken as 0.
   */
  private changeTotalOccupancy(delta: number): void {
    const total = this.totalOccupancy + delta;
    this.totalOccupancy = total < 1e-12 ? 0 : total;
  }

  /** Expected compute seconds: the prefix average, or the default guess (remembered for correction). */
  private taskDuration(ts: TaskState): number {
    const avg = ts.prefix.durationAverage;
    if (avg >= 0) return avg;
    let s = this.unknownDurations.get(ts.prefix.name);
    if (s === undefined) this.unknownDurations.set(ts.prefix.name, (s = new Set()));
    if (ts.state === 'processing' || ts.state === 'waiting') s.add(ts);
    return this.options.defaultTaskDurationS;
  }

  /** Bytes of the dependencies `ws` lacks, or -1 when it lacks none. */
  private bytesToFetch(ts: TaskState, ws: WorkerState): number {
    let bytes = -1;
    const d = this.options.defaultDataSize;
    for (const dts of ts.dependencies) if (!dts.whoHas.has(ws)) bytes = Math.max(bytes, 0) + dts.getNbytes(d);
    return bytes;
  }

  /** Seconds to move the dependencies `ws` lacks (charged to its occupancy with the task). */
  private commCost(ts: TaskState, ws: WorkerState): number {
    return Math.max(0, this.bytesToFetch(ts, ws)) / this.options.bandwidth;
  }

  /**
   * What choosing `ws` adds to the task's start: the transfer's bytes over the bandwidth plus,
   * when it lacks any dependency, one fixed latency (a request and its reply; the reference's
   * work stealing counts one too). Without it a few bytes cost next to nothing, so a slightly
   * less occupied worker took the adds of a tree reduction from the worker that held both
   * inputs, and each of them waited for a transfer. (Only the choice pays the latency: charged
   * to occupancy it would count again for every later task on the same fetched value.)
   */
  private placementCost(ts: TaskState, ws: WorkerState): number {
    const bytes = this.bytesToFetch(ts, ws);
    return bytes < 0 ? 0 : bytes / this.options.bandwidth + this.options.transferLatencyS;
  }

  private checkIdleSaturated(ws: WorkerState): void {
    if (this.totalNthreads === 0 || ws.status !== 'running' || this.workers.get(ws.address) !== ws) {
      this.idle.delete(ws);
      this.saturated.delete(ws);
      return;
    }
    const nc = ws.nthreads;
    const p = ws.processing.size;
    const occ = ws.occupancy;
    const avg = this.totalOccupancy / this.totalNthreads;
    if (p < nc || occ < (nc * avg) / 2) {
      this.idle.add(ws);
      this.saturated.delete(ws);
      return;
    }
    this.idle.delete(ws);
    if (p > nc) {
      const pending = (occ * (p - nc)) / (p * nc);
      if (pending > 0.4 && pending > 1.9 * avg) {
        this.saturated.add(ws);
        return;
      }
    }
    this.saturated.delete(ws);
  }

  // -------------------------------------------------------------------------------------------
  // Worker choice (the reference's Scheduling Policies / decide_worker)

  /** Running workers allowed by hard restrictions and resources, or `null` when unrestricted. */
  validWorkers(ts: TaskState): Set<WorkerState> | null {
    let s: Set<WorkerState> | null = null;
    if (ts.restrictions !== null) {
      s = new Set();
      for (const r of ts.restrictions) {
        const byAddr = this.workers.get(r);
        if (byAddr !== undefined && byAddr.status === 'running') s.add(byAddr);
        const byName = this.workersByName.get(r);
        if (byName !== undefined && byName.status === 'running') s.add(byName);
        const byHost = this.workersByHost.get(r);
        if (byHost !== undefined) for (const ws of byHost) if (ws.status === 'running') s.add(ws);
      }
    }
    const res = ts.resourceRestrictions;
    if (res !== null) {
      const fits = (ws: WorkerState): boolean => {
        for (const r in res) if ((ws.resources[r] ?? 0) < (res[r] as number)) return false;
        return true;
      };
      const out = new Set<WorkerState>();
      for (const ws of s ?? this.running) if (fits(ws)) out.add(ws);
      s = out;
    }
    return s;
  }

  /** Pick a worker for a ready task, or `null` when none fits (the task goes to `no-worker`). */
  decideWorker(ts: TaskState): WorkerState | null {
    if (this.running.size === 0) return null;
    let valid = this.validWorkers(ts);
    if (valid !== null && valid.size === 0) {
      if (!ts.looseRestrictions) return null;
      valid = null;
    }
    if (ts.dependencies.size === 0 && valid === null) {
      const run = ts.group.placementRun;
      return run !== null ? this.coAssign(run) : this.leastBusy();
    }
    let candidates: Set<WorkerState> = new Set();
    for (const dts of ts.dependencies) for (const ws of dts.whoHas) if (ws.status === 'running') candidates.add(ws);
    if (valid === null) {
      if (candidates.size === 0) candidates = this.running;
      // With work stealing, as the reference: only the holders, and balance() moves queued tasks
      // to idle workers when that pays. Without it, other workers compete here (all of a small
      // pool, the idle ones of a large one), so a map over one small scattered value spreads out
      // instead of queueing on its holder; the objective charges them the bytes they would fetch.
      else if (!this.options.workStealing) for (const ws of this.running.size <= LINEAR_POOL_LIMIT ? this.running : this.idle) candidates.add(ws);
    } else {
      const inter = new Set<WorkerState>();
      for (const ws of candidates) if (valid.has(ws)) inter.add(ws);
      candidates = inter.size > 0 ? inter : valid;
    }
    if (candidates.size === 1) for (const ws of candidates) return ws;
    let best: WorkerState | null = null;
    let bestStart = Infinity;
    let bestBytes = Infinity;
    for (const ws of candidates) {
      const start = ws.occupancy / ws.nthreads + this.placementCost(ts, ws);
      if (start < bestStart || (start === bestStart && ws.nbytes < bestBytes)) {
        best = ws;
        bestStart = start;
        bestBytes = ws.nbytes;
      }
    }
    return best;
  }

  /**
   * Consecutive root-ish tasks of a submission go to the same worker, its share of them at a
   * time (run size / total threads x its threads); then the least busy worker takes the next
   * run. Neighbours in a submission are usually combined later (pairs of a tree reduction,
   * chunks of a sum), and where they lie together that needs no transfer: placed one by one on
   * the least busy worker they alternated between workers, so every add of the first level of
   * a pairwise reduction fetched an input from the other worker.
   */
  private coAssign(run: PlacementRun): WorkerState | null {
    let ws = run.worker;
    if (ws === null || run.left <= 0 || ws.status !== 'running' || this.workers.get(ws.address) !== ws) {
      ws = this.leastBusy();
      if (ws === null) return null;
      run.worker = ws;
      run.left = Math.max(1, Math.floor((run.size / this.totalNthreads) * ws.nthreads));
    }
    run.left -= 1;
    return ws;
  }

  /** No deps, no restrictions: least occupancy per thread among idle workers (or all), round-robin on ties. */
  private leastBusy(): WorkerState | null {
    const pool = this.idle.size > 0 ? this.idle : this.running;
    const n = pool.size;
    if (n === 0) return null;
    if (n >= LINEAR_POOL_LIMIT) {
      if (pool === this.running) {
        if (this.runningListStale) {
          this.runningList = [...this.running];
          this.runningListStale = false;
        }
        return this.runningList[this.leastBusyTurn++ % this.runningList.length] ?? null;
      }
      // Large idle pool: any idle worker will do; take the first (O(1)).
      for (const ws of pool) return ws;
    }
    const start = this.leastBusyTurn++ % n;
    let best: WorkerState | null = null;
    let bestScore = Infinity;
    let bestRank = Infinity;
    let i = 0;
    for (const ws of pool) {
      const score = ws.occupancy / ws.nthreads;
      const rank = (i - start + n) % n;
      if (score < bestScore || (score === bestScore && rank < bestRank)) {
        best = ws;
        bestScore = score;
        bestRank = rank;
      }
      i++;
    }
    return best;
  }

  // -------------------------------------------------------------------------------------------
  // Work stealing (the reference's, transactional: a task moves only once its victim confirms
  // that it had not started it)

  private balance(stimulusId: StimulusId): void {
    if (!this.options.workStealing || this.idle.size === 0) return;
    // Queued tasks keep the estimate of when they were assigned; a prefix's first runs are often
    // slow (its function compiled, caches cold), so those can be ten times the average now (the
    // reference re-evaluates occupancy in the background for the same reason).
    const now = this.options.clock();
    for (const ws of this.workers.values()) {
      // At most every REEVALUATE_MS per worker: it walks the worker's whole queue.
      if (now - (this.reevaluatedAt.get(ws) ?? -Infinity) < REEVALUATE_MS) continue;
      this.reevaluatedAt.set(ws, now);
      this.reevaluateOccupancy(ws);
    }
    const moves = planSteals(this.workers.values(), this.idle, this.steals, {
      transferTime: (ts, ws) => this.placementCost(ts, ws),
    });
    for (const m of moves) {
      this.steals.set(m.ts, { ...m, requestId: stimulusId });
      this.sendWorker(m.victim.address, { op: 'steal-request', key: m.ts.key, stimulusId });
    }
  }

  private stealResponse(ev: StealResponseEvent): void {
    const ts = this.tasks.get(ev.key);
    const move = ts === undefined ? undefined : this.steals.get(ts);
    // Only the answer to the request in flight: after the task left processing (and maybe came
    // back to the same worker), an answer about its earlier run says nothing about this one.
    if (ts === undefined || move === undefined || move.victim.address !== ev.worker || move.requestId !== ev.stimulusId) return;
    this.steals.delete(ts);
    const victim = move.victim;
    if (ts.state !== 'processing' || ts.processingOn !== victim) return;
    if (ev.state !== 'waiting' && ev.state !== 'ready' && ev.state !== 'constrained') return; // it runs there
    // The victim gave it up: run it on the thief, or wherever fits now if the thief left.
    this.removeFromProcessing(ts);
    let thief: WorkerState | null = move.thief;
    if (thief.status !== 'running' || this.workers.get(thief.address) !== thief) thief = this.decideWorker(ts);
    if (thief === null) {
      this.setState(ts, 'no-worker');
      this.unrunnable.add(ts);
      this.logTransition(ts.key, 'processing', 'no-worker', [], ev.stimulusId);
      return;
    }
    // Still processing, on another worker: a story row, but no transition for plugins.
    this.log.push(ts.key, 'processing', 'processing', [], ev.stimulusId, this.options.clock());
    if (thief !== victim) this.stolen += 1;
    this.assign(ts, thief, ev.stimulusId);
  }

  private reevaluateOccupancy(ws: WorkerState): void {
    if (ws.processing.size === 0) return;
    let total = 0;
    for (const [ts, old] of ws.processing) {
      const avg = ts.prefix.durationAverage;
      if (avg < 0) {
        total += old;
        continue;
      }
      const cost = avg + this.commCost(ts, ws);
      if (cost !== old) ws.processing.set(ts, cost);
      total += cost;
    }
    this.changeTotalOccupancy(total - ws.occupancy);
    ws.occupancy = total;
    this.checkIdleSaturated(ws);
  }

  // -------------------------------------------------------------------------------------------
  // Output

  private sendWorker(address: Address, msg: SchedulerToWorkerMsg): void {
    let q = this.outWorkers.get(address);
    if (q === undefined) this.outWorkers.set(address, (q = []));
    q.push(msg);
  }

  private sendFreeKey(address: Address, key: Key, stimulusId: StimulusId): void {
    let q = this.outWorkers.get(address);
    if (q === undefined) this.outWorkers.set(address, (q = []));
    const last = q[q.length - 1];
    if (last !== undefined && last.op === 'free-keys') last.keys.push(key);
    else q.push({ op: 'free-keys', keys: [key], stimulusId });
  }

  private sendClient(client: string, msg: SchedulerToClientMsg): void {
    if (client === FIRE_AND_FORGET_CLIENT) return;
    let q = this.outClients.get(client);
    if (q === undefined) this.outClients.set(client, (q = []));
    q.push(msg);
  }

  private sendClientKeys(client: string, op: 'cancelled-keys', keys: Key[]): void {
    if (client === FIRE_AND_FORGET_CLIENT) return;
    let q = this.outClients.get(client);
    if (q === undefined) this.outClients.set(client, (q = []));
    const last = q[q.length - 1];
    if (last !== undefined && last.op === op) for (const k of keys) last.keys.push(k); // not push(...): cancels can be huge
    else q.push({ op, keys: [...keys] });
  }

  /**
   * The stimulus's messages, in the order the server writes them: workers given work first, then
   * clients, then workers only told to free keys. Each write to a worker's socket can take
   * 50-250 us on a small VM (waking the receiver), and a release of the previous result written
   * before the next compute-task to another worker delayed that task by as much in a loop of
   * submit, await, release. Messages to one peer keep their order; peers never relied on an
   * order between them.
   */
  private flush(): Instruction[] {
    const out: Instruction[] = [];
    let releasesOnly: Instruction[] | undefined;
    for (const [worker, msgs] of this.outWorkers) {
      if (!this.workers.has(worker)) continue;
      if (msgs.every((m) => m.op === 'free-keys')) (releasesOnly ??= []).push({ type: 'send-worker', worker, msgs });
      else out.push({ type: 'send-worker', worker, msgs });
    }
    for (const [client, msgs] of this.outClients) {
      if (this.clients.has(client)) out.push({ type: 'send-client', client, msgs });
    }
    if (releasesOnly !== undefined) out.push(...releasesOnly);
    clearIfAny(this.outWorkers);
    clearIfAny(this.outClients);
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Validation

  /** Invariants of one task in its current state. Throws InvalidSchedulerStateError. */
  validateTask(ts: TaskState): void {
    const fail = (what: string): never => {
      throw new InvalidSchedulerStateError(`task ${ts.key} (${ts.state}): ${what}\nstory:\n${this.story(ts.key).map((e) => JSON.stringify(e)).join('\n')}`);
    };
    if (this.tasks.get(ts.key) !== ts) fail('not in tasks');
    for (const dts of ts.dependencies) {
      if (!dts.dependents.has(ts)) fail(`dependency ${dts.key} does not list it as dependent`);
      if (this.tasks.get(dts.key) !== dts) fail(`dependency ${dts.key} is forgotten`);
    }
    for (const dts of ts.dependents) if (!dts.dependencies.has(ts)) fail(`dependent ${dts.key} does not list it`);
    for (const dts of ts.waitingOn) if (!ts.dependencies.has(dts)) fail(`waits on non-dependency ${dts.key}`);
    for (const dts of ts.waiters) if (!ts.dependents.has(dts)) fail(`waiter ${dts.key} is not a dependent`);
    for (const cs of ts.wantedBy) if (!cs.wantsWhat.has(ts)) fail(`client ${cs.id} does not list it`);
    for (const ws of ts.whoHas) if (!ws.hasWhat.has(ts)) fail(`holder ${ws.address} does not list it`);
    const inUnrunnable = this.unrunnable.has(ts);
    switch (ts.state) {
      case 'released':
        if (ts.whoHas.size > 0) fail('released but held');
        if (ts.processingOn !== null) fail('released but processing');
        if (ts.waitingOn.size > 0) fail('released but waiting on deps');
        break;
      case 'waiting':
        if (ts.whoHas.size > 0 || ts.processingOn !== null) fail('waiting but held/processing');
        for (const dts of ts.dependencies) {
          const inMem = dts.whoHas.size > 0;
          if (inMem === ts.waitingOn.has(dts)) fail(`waitingOn inconsistent for ${dts.key}`);
          if (!dts.waiters.has(ts) && dts.state !== 'released' && dts.state !== 'waiting') {
            fail(`dependency ${dts.key} (${dts.state}) does not list it as waiter`);
          }
        }
        break;
      case 'no-worker':
        if (!inUnrunnable) fail('no-worker but not in unrunnable');
        if (ts.waitingOn.size > 0) fail('no-worker but waiting on deps');
        for (const dts of ts.dependencies) if (dts.whoHas.size === 0) fail(`dependency ${dts.key} not in memory`);
        break;
      case 'processing': {
        const ws = ts.processingOn;
        if (ws === null) fail('processing nowhere');
        else {
          if (!ws.processing.has(ts)) fail(`worker ${ws.address} does not list it`);
          if (this.workers.get(ws.address) !== ws) fail(`processing on removed worker ${ws.address}`);
        }
        if (ts.waitingOn.size > 0) fail('processing but waiting on deps');
        if (ts.whoHas.size > 0) fail('processing but held');
        for (const dts of ts.dependencies) {
          if (dts.whoHas.size === 0) fail(`dependency ${dts.key} not in memory`);
          if (!dts.waiters.has(ts)) fail(`dependency ${dts.key} does not list it as waiter`);
        }
        break;
      }
      case 'memory':
        if (ts.whoHas.size === 0) fail('memory but held nowhere');
        if (ts.processingOn !== null) fail('memory but processing');
        if (ts.waitingOn.size > 0) fail('memory but waiting');
        for (const ws of ts.whoHas) if (this.workers.get(ws.address) !== ws) fail(`held by removed worker ${ws.address}`);
        break;
      case 'erred':
        if (ts.exceptionBlame === null) fail('erred without blame');
        if (ts.whoHas.size > 0 || ts.processingOn !== null) fail('erred but held/processing');
        break;
      case 'forgotten':
        fail('forgotten task still in tasks');
    }
    if (ts.state !== 'no-worker' && inUnrunnable) fail('in unrunnable');
    if (ts.state !== 'processing' && ts.processingOn !== null) fail('processingOn set');
  }

  /** Every invariant: cross references, occupancy sums, who_has/has_what symmetry, sets. */
  validateState(): void {
    const fail = (what: string): never => {
      throw new InvalidSchedulerStateError(what);
    };
    for (const ts of this.tasks.values()) {
      this.validateTask(ts);
      // At rest a waiting task always waits on something (else it would be processing/no-worker).
      if (ts.state === 'waiting' && ts.waitingOn.size === 0) fail(`task ${ts.key} waiting on nothing`);
    }
    let total = 0;
    let threads = 0;
    for (const [addr, ws] of this.workers) {
      if (ws.address !== addr) fail(`worker map key ${addr} != ${ws.address}`);
      threads += ws.nthreads;
      let occ = 0;
      for (const [ts, cost] of ws.processing) {
        occ += cost;
        if (ts.processingOn !== ws || this.tasks.get(ts.key) !== ts) fail(`worker ${addr} processing stale ${ts.key}`);
      }
      if (!near(occ, ws.occupancy)) fail(`worker ${addr} occupancy ${ws.occupancy} != sum ${occ}`);
      total += ws.occupancy;
      let nbytes = 0;
      for (const ts of ws.hasWhat) {
        nbytes += ts.getNbytes(this.options.defaultDataSize);
        if (!ts.whoHas.has(ws) || this.tasks.get(ts.key) !== ts) fail(`worker ${addr} holds stale ${ts.key}`);
      }
      if (nbytes !== ws.nbytes) fail(`worker ${addr} nbytes ${ws.nbytes} != sum ${nbytes}`);
      for (const r of Object.keys(ws.usedResources)) {
        let used = 0;
        for (const ts of ws.processing.keys()) used += ts.resourceRestrictions?.[r] ?? 0;
        if (!near(used, ws.usedResources[r] ?? 0)) fail(`worker ${addr} used ${r} ${ws.usedResources[r]} != ${used}`);
      }
      if ((ws.status === 'running') !== this.running.has(ws)) fail(`worker ${addr} running set mismatch`);
    }
    if (!near(total, this.totalOccupancy)) fail(`total occupancy ${this.totalOccupancy} != sum ${total}`);
    if (threads !== this.totalNthreads) fail(`total threads ${this.totalNthreads} != ${threads}`);
    for (const ws of this.idle) {
      if (this.saturated.has(ws)) fail(`worker ${ws.address} both idle and saturated`);
      if (this.workers.get(ws.address) !== ws) fail(`idle worker ${ws.address} removed`);
    }
    for (const ws of this.saturated) if (this.workers.get(ws.address) !== ws) fail(`saturated worker ${ws.address} removed`);
    for (const ws of this.running) if (this.workers.get(ws.address) !== ws) fail(`running worker ${ws.address} removed`);
    for (const ts of this.unrunnable) if (this.tasks.get(ts.key) !== ts || ts.state !== 'no-worker') fail(`unrunnable ${ts.key} stale`);
    // A steal in flight is for a task still processing on its victim.
    for (const [ts, m] of this.steals) {
      if (this.tasks.get(ts.key) !== ts || ts.state !== 'processing' || ts.processingOn !== m.victim) fail(`steal of ${ts.key} from ${m.victim.address} stale`);
      if (this.workers.get(m.victim.address) !== m.victim) fail(`steal of ${ts.key} from removed ${m.victim.address}`);
    }
    for (const [id, cs] of this.clients) {
      if (cs.id !== id) fail(`client map key ${id}`);
      for (const ts of cs.wantsWhat) {
        if (!ts.wantedBy.has(cs) || this.tasks.get(ts.key) !== ts) fail(`client ${id} wants stale ${ts.key}`);
      }
    }
    const counts: Partial<Record<string, number>> = {};
    for (const ts of this.tasks.values()) {
      const gk = `${ts.group.name}\u0000${ts.state}`;
      counts[gk] = (counts[gk] ?? 0) + 1;
    }
    for (const g of this.groups.values()) {
      for (const s of Object.keys(g.states) as TaskStateName[]) {
        if (s === 'forgotten') continue;
        if ((counts[`${g.name}\u0000${s}`] ?? 0) !== g.states[s]) fail(`group ${g.name} count of ${s} is ${g.states[s]}`);
      }
    }
  }
}

function near(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 + 1e-6 * Math.max(Math.abs(a), Math.abs(b));
}

function unknownError(key: Key): WireError {
  return { name: 'Error', message: `task ${key} failed` };
}
