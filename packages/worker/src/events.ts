// Events (stimuli) that WorkerState consumes and the instructions it returns. Small records,
// discriminated by `type`, each with the `stimulusId` of what caused it. The Worker shell turns
// scheduler messages and the outcome of its async jobs into events, and carries instructions out.

import type {
  AcquireReplicasMsg,
  Address,
  ComputeTaskMsg,
  FreeKeysMsg,
  Key,
  RemoveReplicasMsg,
  StartStop,
  StealRequestMsg,
  StimulusId,
  WireError,
  WorkerToSchedulerMsg,
} from '@dd/protocol';

// ------------------------------------------------------------------------------------------
// Events

/**
 * The scheduler's stream messages become events with the same fields, `op` becoming `type`:
 * derived from the wire contract so the two cannot drift apart.
 */
type FromMessage<M extends { op: string }> = { type: M['op'] } & Omit<M, 'op'>;

/** Compute `key`; its dependencies are the keys of `nbytes` and `whoHas`. */
export type ComputeTaskEvent = FromMessage<ComputeTaskMsg>;
export type FreeKeysEvent = FromMessage<FreeKeysMsg>;
export type AcquireReplicasEvent = FromMessage<AcquireReplicasMsg>;
export type RemoveReplicasEvent = FromMessage<RemoveReplicasMsg>;
/** Work stealing: give `key` up if it has not started; answered with a steal-response. */
export type StealRequestEvent = FromMessage<StealRequestMsg>;
/** A task run finished with a value. */
export interface ExecuteSuccessEvent {
  type: 'execute-success';
  key: Key;
  value: unknown;
  /** Bytes of the value if the executor measured them; otherwise the store estimates. */
  nbytes?: number;
  /** Type name of the value reported to the scheduler. */
  valueType?: string;
  start: number;
  stop: number;
  stimulusId: StimulusId;
}
/** A task run threw (or its function could not be loaded). */
export interface ExecuteFailureEvent {
  type: 'execute-failure';
  key: Key;
  exception: WireError;
  start?: number;
  stop?: number;
  stimulusId: StimulusId;
}
/** A `get-data` request to `worker` answered with data (keys it lacked are absent from `data`). */
export interface GatherDepSuccessEvent {
  type: 'gather-dep-success';
  worker: Address;
  data: Record<Key, unknown>;
  /** Keys the peer holds but could not send, with why (GetDataReply): they fail here. */
  unsendable?: Record<Key, WireError>;
  /** Bytes per key if known (else estimated by the store). */
  nbytes?: Record<Key, number>;
  start?: number;
  stop?: number;
  stimulusId: StimulusId;
}
/** The peer answered `{status:'busy'}`. */
export interface GatherDepBusyEvent {
  type: 'gather-dep-busy';
  worker: Address;
  stimulusId: StimulusId;
}
/** The peer could not be reached, or the connection dropped: treat it as gone. */
export interface GatherDepNetworkFailureEvent {
  type: 'gather-dep-network-failure';
  worker: Address;
  exception?: WireError;
  stimulusId: StimulusId;
}
/** The transfer failed for another reason (e.g. the data could not be deserialized). */
export interface GatherDepFailureEvent {
  type: 'gather-dep-failure';
  worker: Address;
  exception: WireError;
  stimulusId: StimulusId;
}
/** The scheduler removed peer `worker`: whatever it held is gone (the scheduler knows). */
export interface RemoveWorkerEvent {
  type: 'remove-worker';
  worker: Address;
  stimulusId: StimulusId;
}
/** The backoff after a busy answer from `worker` is over. */
export interface RetryBusyWorkerEvent {
  type: 'retry-busy-worker';
  worker: Address;
  stimulusId: StimulusId;
}
/** Data stored directly on this worker (scatter: the client registers it with the scheduler). */
export interface UpdateDataEvent {
  type: 'update-data';
  data: Record<Key, unknown>;
  nbytes?: Record<Key, number>;
  stimulusId: StimulusId;
}
/** Memory pressure: stop starting tasks and transfers. */
export interface PauseEvent {
  type: 'pause';
  stimulusId: StimulusId;
}
export interface UnpauseEvent {
  type: 'unpause';
  stimulusId: StimulusId;
}

export type WorkerEvent =
  | ComputeTaskEvent
  | FreeKeysEvent
  | AcquireReplicasEvent
  | RemoveReplicasEvent
  | StealRequestEvent
  | ExecuteSuccessEvent
  | ExecuteFailureEvent
  | GatherDepSuccessEvent
  | GatherDepBusyEvent
  | GatherDepNetworkFailureEvent
  | GatherDepFailureEvent
  | RetryBusyWorkerEvent
  | RemoveWorkerEvent
  | UpdateDataEvent
  | PauseEvent
  | UnpauseEvent;

// ------------------------------------------------------------------------------------------
// Instructions

/** Run task `key` (its spec and dependency values are in the state and the data store). */
export interface Execute {
  type: 'execute';
  key: Key;
  stimulusId: StimulusId;
}
/** Ask `worker` for `keys` with rpc `get-data`; resolve into a GatherDep* event. */
export interface GatherDep {
  type: 'gather-dep';
  worker: Address;
  keys: Key[];
  totalNbytes: number;
  stimulusId: StimulusId;
}
/** Send `msg` to the scheduler over the batched stream. */
export interface SendToScheduler {
  type: 'send-to-scheduler';
  msg: WorkerToSchedulerMsg;
}
/** After a short backoff, feed a `retry-busy-worker` event for `worker`. */
export interface RetryBusyWorkerLater {
  type: 'retry-busy-worker-later';
  worker: Address;
  stimulusId: StimulusId;
}

export type Instruction = Execute | GatherDep | SendToScheduler | RetryBusyWorkerLater;

export type { StartStop };
