// Stimuli fed into SchedulerState.handleStimulus and the instructions it returns.
// Events are small records discriminated by `kind`, each with the `stimulusId` that caused it;
// instructions are messages to send, batched per destination.

import type {
  Address,
  InlineValue,
  Key,
  SchedulerToClientMsg,
  SchedulerToWorkerMsg,
  StartStop,
  StimulusId,
  TaskDefinition,
  WireError,
  WorkerMetrics,
} from '@dd/protocol';

interface Base {
  stimulusId: StimulusId;
}

/** A client submits tasks (wire `update-graph`). */
export interface UpdateGraphEvent extends Base {
  kind: 'update-graph';
  client: string;
  tasks: TaskDefinition[];
  keys: Key[];
  userPriority?: number;
  fifoTimeoutMs?: number;
  /**
   * A later slice of one submission (the server hands a large map to the state machine in
   * slices): it stays in the priority generation of the slices before it.
   */
  continuation?: boolean;
}
export interface TaskFinishedEvent extends Base {
  kind: 'task-finished';
  worker: Address;
  key: Key;
  nbytes: number;
  type?: string;
  /** The result, when small and plain: forwarded to the clients that want the key, not kept. */
  value?: InlineValue;
  /** Times in milliseconds (e.g. Date.now()); `compute` entries feed the prefix duration average. */
  startstops?: StartStop[];
}
export interface TaskErredEvent extends Base {
  kind: 'task-erred';
  worker: Address;
  key: Key;
  exception: WireError;
  startstops?: StartStop[];
}
/** A worker could not find `key` on `errantWorker`. */
export interface MissingDataEvent extends Base {
  kind: 'missing-data';
  key: Key;
  errantWorker: Address;
}
/** A worker dropped its copy of keys. */
export interface ReleaseWorkerDataEvent extends Base {
  kind: 'release-worker-data';
  worker: Address;
  keys: Key[];
}
/** Work stealing, periodic: move queued tasks from busy workers to idle ones where it pays. */
export interface BalanceEvent extends Base {
  kind: 'balance';
}
/**
 * Release the finished dependencies that a task with many of them left in memory when it
 * finished (SchedulerState.deferredReleaseCount): they go in a stimulus of their own, so that the
 * task's own result is reported first. The server sends it in the next turn of the event loop.
 */
export interface ReleaseDeferredEvent extends Base {
  kind: 'release-deferred';
}
/** A worker's answer to a steal-request: the state `key` was in there (null: unknown). */
export interface StealResponseEvent extends Base {
  kind: 'steal-response';
  worker: Address;
  key: Key;
  state: string | null;
}
/** A worker now holds replicas of keys. */
export interface AddKeysEvent extends Base {
  kind: 'add-keys';
  worker: Address;
  keys: Key[];
  nbytes?: Record<Key, number>;
}
export interface AddWorkerEvent extends Base {
  kind: 'add-worker';
  address: Address;
  name: string;
  host: string;
  nthreads: number;
  memoryLimit: number;
  resources: Record<string, number>;
  /** Data the worker already holds. */
  nbytes?: Record<Key, number>;
  localDirectory?: string;
  pid?: number;
  /** Ports of the worker's other servers (e.g. `dashboard`: its HTTP endpoints). */
  services?: Record<string, number>;
}
export interface RemoveWorkerEvent extends Base {
  kind: 'remove-worker';
  address: Address;
  /** A clean, expected departure: tasks processing there are not counted as suspicious. */
  safe?: boolean;
}
export interface WorkerHeartbeatEvent extends Base {
  kind: 'worker-heartbeat';
  worker: Address;
  now?: number;
  metrics?: WorkerMetrics;
}
export interface WorkerPausedEvent extends Base {
  kind: 'worker-paused';
  worker: Address;
}
export interface WorkerResumedEvent extends Base {
  kind: 'worker-resumed';
  worker: Address;
}
export interface AddClientEvent extends Base {
  kind: 'add-client';
  client: string;
}
export interface RemoveClientEvent extends Base {
  kind: 'remove-client';
  client: string;
}
export interface ClientHeartbeatEvent extends Base {
  kind: 'client-heartbeat';
  client: string;
}
export interface ClientDesiresKeysEvent extends Base {
  kind: 'client-desires-keys';
  client: string;
  keys: Key[];
}
export interface ClientReleasesKeysEvent extends Base {
  kind: 'client-releases-keys';
  client: string;
  keys: Key[];
}
export interface CancelEvent extends Base {
  kind: 'cancel';
  client: string;
  keys: Key[];
  force?: boolean;
}
/** Scatter: the client stored data on workers itself. */
export interface UpdateDataEvent extends Base {
  kind: 'update-data';
  client: string;
  whoHas: Record<Key, Address[]>;
  nbytes: Record<Key, number>;
}
/** Retry erred keys (and the erred dependencies they were blamed on). */
export interface RetryEvent extends Base {
  kind: 'retry';
  client?: string;
  keys: Key[];
}

export type SchedulerEvent =
  | UpdateGraphEvent
  | TaskFinishedEvent
  | TaskErredEvent
  | MissingDataEvent
  | ReleaseWorkerDataEvent
  | AddKeysEvent
  | AddWorkerEvent
  | RemoveWorkerEvent
  | WorkerHeartbeatEvent
  | WorkerPausedEvent
  | WorkerResumedEvent
  | AddClientEvent
  | RemoveClientEvent
  | ClientHeartbeatEvent
  | ClientDesiresKeysEvent
  | ClientReleasesKeysEvent
  | CancelEvent
  | UpdateDataEvent
  | RetryEvent
  | BalanceEvent
  | ReleaseDeferredEvent
  | StealResponseEvent;

export type SchedulerEventKind = SchedulerEvent['kind'];

/** Messages for one worker, in order. */
export interface SendWorker {
  type: 'send-worker';
  worker: Address;
  msgs: SchedulerToWorkerMsg[];
}
/** Messages for one client, in order. */
export interface SendClient {
  type: 'send-client';
  client: string;
  msgs: SchedulerToClientMsg[];
}
export type Instruction = SendWorker | SendClient;
