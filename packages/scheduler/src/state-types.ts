// The records the scheduling state machine keeps: one per task, worker, client, task prefix and
// task group (the reference's "Scheduling State" chapter). Plain classes with public fields: the
// state machine mutates them directly on its hot paths; everything else reads them only.

import type { Address, Key, WireError, WireRunSpec, WorkerIdentity, WorkerMetrics } from '@dd/protocol';
import { ownSet, sharedEmptySet } from '@dd/protocol';

export const TASK_STATES = ['released', 'waiting', 'no-worker', 'processing', 'memory', 'erred', 'forgotten'] as const;
export type TaskStateName = (typeof TASK_STATES)[number];

export const WORKER_STATUSES = ['running', 'paused', 'closing'] as const;
export type WorkerStatus = (typeof WORKER_STATUSES)[number];

/** A broad class of tasks, e.g. `inc`: keeps a moving average of compute time for occupancy estimates. */
export class TaskPrefix {
  /** Seconds; negative while unknown. */
  durationAverage = -1;
  /** Total seconds per startstop action (compute, transfer, ...). */
  readonly allDurations: Record<string, number> = {};
  suspicious = 0;
  count = 0;
  constructor(readonly name: string) {}
}

/** Tasks of one submission family (same prefix / same tuple-key name); counts tasks per state. */
export class TaskGroup {
  readonly states: Record<TaskStateName, number> = {
    released: 0,
    waiting: 0,
    'no-worker': 0,
    processing: 0,
    memory: 0,
    erred: 0,
    forgotten: 0,
  };
  /** Tasks ever created in this group (alive = total - states.forgotten). */
  total = 0;
  /** Seconds of compute spent on tasks of this group. */
  duration = 0;
  nbytesInMemory = 0;
  readonly types = new Set<string>();
  /** While a submission with many of this group's root-ish tasks is placed (SchedulerState.coAssign). */
  placementRun: PlacementRun | null = null;
  constructor(
    readonly name: string,
    readonly prefix: TaskPrefix,
  ) {}
}

/** Root-ish tasks of one group in one submission, placed in runs: the worker taking the current run and how many more it takes. */
export interface PlacementRun {
  readonly size: number;
  worker: WorkerState | null;
  left: number;
}

export class TaskState {
  state: TaskStateName = 'released';
  /** Opaque to the scheduler; `null` for pure data (scattered), which cannot be recomputed. */
  runSpec: WireRunSpec | null;
  // The sets below start as one shared empty set and get their own on the first add (add* below):
  // most of them stay empty for most tasks, and seven fresh Sets per task were most of the
  // scheduler's garbage (measured: 25% of its time in GC on 10 000-task maps).
  /** Read-only outside add*: add through addDependency etc. */
  dependencies: Set<TaskState> = sharedEmptySet();
  dependents: Set<TaskState> = sharedEmptySet();
  /** Dependencies not yet in memory (waiting / processing / no-worker only). */
  waitingOn: Set<TaskState> = sharedEmptySet();
  /** Dependents that still need this task's result. */
  waiters: Set<TaskState> = sharedEmptySet();
  whoHas: Set<WorkerState> = sharedEmptySet();
  wantedBy: Set<ClientState> = sharedEmptySet();
  processingOn: WorkerState | null = null;
  /** Bytes of the result; negative while unknown. */
  nbytes = -1;
  /** `[-userPriority, generation, order]`, compared element-wise, lower first. */
  priority: number[] | null = null;
  /** Worker addresses, hosts or names this task may run on (`null`: anywhere). */
  restrictions: Set<string> | null = null;
  /** Restrictions are preferences: fall back to any worker if none fits. */
  looseRestrictions = false;
  resourceRestrictions: Record<string, number> | null = null;
  retries = 0;
  /** Number of worker deaths this task was involved in. */
  suspicious = 0;
  exception: WireError | null = null;
  /** The task whose failure made this one err (itself, or a dependency). */
  exceptionBlame: TaskState | null = null;
  /** Workers that reported this task erred (told to free it when it is released). */
  erredOn: Set<WorkerState> = sharedEmptySet();
  hasLostDependencies = false;
  type: string | null = null;
  annotations: Record<string, unknown> | null = null;

  constructor(
    readonly key: Key,
    runSpec: WireRunSpec | null,
    readonly prefix: TaskPrefix,
    readonly group: TaskGroup,
  ) {
    this.runSpec = runSpec;
  }

  /** Known bytes, or the default guess while unknown. */
  getNbytes(defaultSize: number): number {
    return this.nbytes >= 0 ? this.nbytes : defaultSize;
  }

  addDependency(ts: TaskState): void {
    (this.dependencies = ownSet(this.dependencies)).add(ts);
  }
  addDependent(ts: TaskState): void {
    (this.dependents = ownSet(this.dependents)).add(ts);
  }
  addWaitingOn(ts: TaskState): void {
    (this.waitingOn = ownSet(this.waitingOn)).add(ts);
  }
  addWaiter(ts: TaskState): void {
    (this.waiters = ownSet(this.waiters)).add(ts);
  }
  addHolder(ws: WorkerState): void {
    (this.whoHas = ownSet(this.whoHas)).add(ws);
  }
  addWantedBy(cs: ClientState): void {
    (this.wantedBy = ownSet(this.wantedBy)).add(cs);
  }
  addErredOn(ws: WorkerState): void {
    (this.erredOn = ownSet(this.erredOn)).add(ws);
  }
}

/** What a worker declares when it joins: its identity as clients see it, less what changes. */
export type WorkerInfo = Omit<WorkerIdentity, 'lastSeen' | 'metrics'>;

export class WorkerState {
  readonly address: Address;
  readonly name: string;
  readonly host: string;
  readonly nthreads: number;
  readonly memoryLimit: number;
  readonly resources: Record<string, number>;
  readonly usedResources: Record<string, number> = {};
  readonly localDirectory: string | undefined;
  readonly pid: number | undefined;
  /** Ports of the worker's other servers on its host, e.g. `{dashboard: 40123}`. */
  readonly services: Readonly<Record<string, number>> | undefined;
  /** Task -> expected cost in seconds (compute estimate + transfer of missing dependencies). */
  readonly processing = new Map<TaskState, number>();
  readonly hasWhat = new Set<TaskState>();
  /** Bytes held (sum over hasWhat). */
  nbytes = 0;
  /** Seconds of expected work (sum over processing). */
  occupancy = 0;
  status: WorkerStatus = 'running';
  lastSeen: number;
  metrics: WorkerMetrics | null = null;

  constructor(info: WorkerInfo, now: number) {
    this.address = info.address;
    this.name = info.name;
    this.host = info.host;
    this.nthreads = Math.max(1, info.nthreads);
    this.memoryLimit = info.memoryLimit;
    this.resources = { ...info.resources };
    for (const r of Object.keys(this.resources)) this.usedResources[r] = 0;
    this.localDirectory = info.localDirectory;
    this.pid = info.pid;
    this.services = info.services;
    this.lastSeen = now;
  }
}

export class ClientState {
  readonly wantsWhat = new Set<TaskState>();
  lastSeen: number;
  constructor(
    readonly id: string,
    now: number,
  ) {
    this.lastSeen = now;
  }
}

/** Client id the scheduler keeps for `fireAndForget`: its keys are released once finished. */
export const FIRE_AND_FORGET_CLIENT = 'fire-and-forget';

/** Compare two priority tuples element-wise, lower first (missing elements sort first). */
export function comparePriority(a: readonly number[] | null, b: readonly number[] | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
