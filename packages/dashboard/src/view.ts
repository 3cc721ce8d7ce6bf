// What the dashboard reads: a structural, read-only view of a scheduler. @dd/scheduler's
// `Scheduler` satisfies it as it is (the scheduler app passes one in); the dashboard never imports
// the scheduler and has no way to change its state. Tests may pass any object of this shape.

import type { StartStop, StoryEntry, WorkerMetrics } from '@dd/protocol';

export interface PrefixView {
  readonly name: string;
  /** Seconds; negative while unknown. */
  readonly durationAverage: number;
}

export interface GroupView {
  readonly name: string;
  readonly prefix: PrefixView;
  /** Tasks of the group per scheduler state (forgotten included). */
  readonly states: Readonly<Record<string, number>>;
  readonly total: number;
  readonly nbytesInMemory: number;
  /** Seconds of compute. */
  readonly duration: number;
}

export interface WorkerRef {
  readonly address: string;
}

export interface TaskView {
  readonly key: string;
  readonly state: string;
  readonly nbytes: number;
  readonly type: string | null;
  readonly prefix: PrefixView;
  readonly group: { readonly name: string };
  readonly processingOn: WorkerRef | null;
  readonly whoHas: ReadonlySet<WorkerRef>;
  readonly dependencies: ReadonlySet<TaskView>;
  readonly dependents: ReadonlySet<TaskView>;
  readonly exception: { readonly name: string; readonly message: string } | null;
  readonly priority: readonly number[] | null;
}

export interface WorkerView {
  readonly address: string;
  readonly name: string;
  readonly host: string;
  readonly nthreads: number;
  readonly memoryLimit: number;
  /** Bytes of task results held (as the scheduler counts them). */
  readonly nbytes: number;
  /** Seconds of expected work. */
  readonly occupancy: number;
  readonly status: string;
  readonly lastSeen: number;
  readonly metrics: WorkerMetrics | null;
  /** Ports of the worker's own servers on its host; `dashboard` is its HTTP /status and /metrics. */
  readonly services?: Readonly<Record<string, number>> | undefined;
  readonly processing: ReadonlyMap<unknown, number>;
  readonly hasWhat: ReadonlySet<unknown>;
}

export interface StateView {
  readonly tasks: ReadonlyMap<string, TaskView>;
  readonly workers: ReadonlyMap<string, WorkerView>;
  readonly clients: ReadonlyMap<string, unknown>;
  readonly groups: ReadonlyMap<string, GroupView>;
  readonly transitionCounter: number;
  /** Tasks moved by work stealing (absent: a state without it). */
  readonly stolen?: number;
  story(...keys: string[]): StoryEntry[];
}

/** A handled stimulus as observers see it; the dashboard reads the kinds it knows (see collector.ts). */
export interface ObservedEvent {
  readonly kind: string;
}

export interface ObserverView {
  onStimuli?(events: readonly ObservedEvent[]): void;
  onClose?(): void;
}

export interface SchedulerView {
  readonly id: string;
  readonly address: string;
  /** Epoch ms. */
  readonly started: number;
  readonly state: StateView;
  addObserver(observer: ObserverView): () => void;
}

/** The fields of the events the dashboard reads (task-finished, task-erred, add-keys). */
export interface TaskFinishedFields {
  kind: 'task-finished';
  worker: string;
  key: string;
  nbytes: number;
  startstops?: StartStop[];
}
export interface TaskErredFields {
  kind: 'task-erred';
  worker: string;
  key: string;
}
export interface AddKeysFields {
  kind: 'add-keys';
  worker: string;
  keys: string[];
  nbytes: Record<string, number>;
}
