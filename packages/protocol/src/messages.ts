// The ops that dd's scheduler, workers and clients exchange, and the shape of each.
// Field names are camelCase; op names are kebab-case. A peer written in another language
// implements exactly these shapes (PROTOCOL.md describes the encoding).
//
// Two kinds of traffic:
//  - request/reply ("rpc"): the caller sends `{op, ...fields}` and the callee answers with the
//    comm package's reply envelope `{status:'OK', result}` | `{status:'error', error}`.
//  - streams: after `register-client` / `register-worker`, the same connection carries batches
//    (arrays) of one-way messages in both directions.

/** A task key. Tuple keys (['x', 0]) travel as their canonical JSON text (see `wireKey`). */
export type Key = string;
/** Worker address URI, e.g. `tcp://127.0.0.1:40123`. */
export type Address = string;
/** Names the event that caused a change; carried through for stories and debugging. */
export type StimulusId = string;

/** An error as it crosses the wire: enough to rebuild a RemoteError with the remote stack. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  /** Extra detail, e.g. for KilledWorker the task and the last worker. */
  data?: Record<string, unknown>;
}

/**
 * A task's run spec, opaque to the scheduler: a language tag and bytes only workers of that
 * language decode. For `js`, `data` is `encodeTaskSpec(...)` (see task-spec.ts).
 */
export interface WireRunSpec {
  language: string;
  data: Uint8Array;
}

/** Where a task may run. Names match workers by address, host or name. */
export interface TaskRestrictions {
  workers?: string[];
  /** Loose restrictions: if no listed worker exists, run anywhere. */
  allowOtherWorkers?: boolean;
  /** Abstract resources the task holds while it runs, e.g. `{GPU: 1}`. */
  resources?: Record<string, number>;
}

export interface TaskDefinition extends TaskRestrictions {
  key: Key;
  spec: WireRunSpec;
  dependencies: Key[];
  /** Order within its submission (graph order); lower runs first. */
  order?: number;
  retries?: number;
  annotations?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Client -> scheduler

export interface RegisterClientRequest {
  op: 'register-client';
  client: string;
  versions: Record<string, string>;
}
export interface RegisterClientReply {
  schedulerId: string;
  address: Address;
}

/** Stream: submit tasks. `keys` are the keys the client holds futures for. */
export interface UpdateGraphMsg {
  op: 'update-graph';
  client: string;
  tasks: TaskDefinition[];
  keys: Key[];
  /** User priority of the whole submission; higher runs first. */
  userPriority?: number;
  /** Submissions closer together than this (ms) share a generation (fifo timeout). */
  fifoTimeoutMs?: number;
  stimulusId: StimulusId;
}
/** Stream: the client holds a future for keys that already exist. */
export interface ClientDesiresKeysMsg {
  op: 'client-desires-keys';
  client: string;
  keys: Key[];
  stimulusId: StimulusId;
}
/** Stream: the client dropped its last future for these keys. */
export interface ClientReleasesKeysMsg {
  op: 'client-releases-keys';
  client: string;
  keys: Key[];
  stimulusId: StimulusId;
}
export interface HeartbeatClientMsg {
  op: 'heartbeat-client';
  client: string;
}
export interface CloseClientMsg {
  op: 'close-client';
  client: string;
}
/**
 * Stream: answered on the stream with the same `id` once the scheduler has read everything sent
 * before it. Rpcs travel on other connections and can overtake the stream: a client that needs
 * an rpc to see its earlier stream messages (restart) waits for the answer first.
 */
export interface StreamBarrierMsg {
  op: 'stream-barrier';
  client: string;
  id: number;
}
/** The scheduler's answer to a StreamBarrierMsg. */
export interface StreamBarrierReplyMsg {
  op: 'stream-barrier';
  id: number;
}
/** Rpc: cancel keys; `force` cancels even if other clients want them. */
export interface CancelRequest {
  op: 'cancel';
  client: string;
  keys: Key[];
  force?: boolean;
}
/** Rpc: register data the client already stored on workers (scatter). */
export interface UpdateDataRequest {
  op: 'update-data';
  client: string;
  whoHas: Record<Key, Address[]>;
  nbytes: Record<Key, number>;
  stimulusId: StimulusId;
}
/** Rpc: gather through the scheduler (it fetches from workers). */
export interface GatherRequest {
  op: 'gather';
  keys: Key[];
}
export type GatherReply =
  | { status: 'OK'; data: Record<Key, unknown>; unsendable?: Record<Key, WireError> }
  | { status: 'missing'; keys: Key[]; unsendable?: Record<Key, WireError> };

// Query rpcs of the scheduler (replies in brackets):
//   'who-has' {keys?} [Record<Key, Address[]>]        'has-what' {workers?} [Record<Address, Key[]>]
//   'nbytes' {keys?} [Record<Key, number>]            'nthreads' {} [Record<Address, number>]
//   'processing' {workers?} [Record<Address, Key[]>]  'identity' {} [SchedulerIdentity]
//   'story' {keys} [StoryEntry[]]                     'broadcast' {msg, workers?} [Record<Address, unknown>]
export interface WorkerIdentity {
  address: Address;
  name: string;
  host: string;
  nthreads: number;
  memoryLimit: number;
  resources: Record<string, number>;
  localDirectory?: string;
  pid?: number;
  /** Ports of the worker's other servers on its host, e.g. `{dashboard: 40123}` (HTTP /status, /metrics). */
  services?: Record<string, number>;
  lastSeen: number;
  metrics?: WorkerMetrics;
}
/** One task in the reply of the scheduler's `get-task-stream` rpc (the reference's task stream). */
export interface TaskStreamRecord {
  key: Key;
  worker: Address;
  status: 'OK' | 'error';
  /** Phases of the task on its worker (compute, transfer, disk-read, disk-write), ms since the epoch. */
  startstops: StartStop[];
  /** Bytes of the result (finished tasks whose size the worker measured). */
  nbytes?: number;
  type?: string;
}

export interface SchedulerIdentity {
  type: 'Scheduler';
  id: string;
  address: Address;
  started: number;
  workers: Record<Address, WorkerIdentity>;
}
/** One line of a key's story: `[key, start, finish, recommendations, stimulusId, timestamp]`. */
export type StoryEntry = [Key, string, string, Record<Key, string>, StimulusId, number];

// ---------------------------------------------------------------------------------------------
// Scheduler -> client (stream)

/**
 * A task result small and plain enough to ride along with task-finished and key-in-memory, so a
 * client that wants it needs no fetch (who-has, then get-data): a number, boolean, null or a
 * string of at most INLINE_VALUE_MAX_CHARS characters. The scheduler only forwards it.
 */
export type InlineValue = number | boolean | string | null;
export const INLINE_VALUE_MAX_CHARS = 256;

/** True for values that travel inline (see InlineValue). */
export function isInlineValue(value: unknown): value is InlineValue {
  const t = typeof value;
  return t === 'number' || t === 'boolean' || value === null || (t === 'string' && (value as string).length <= INLINE_VALUE_MAX_CHARS);
}

export interface KeyInMemoryMsg {
  op: 'key-in-memory';
  key: Key;
  type?: string;
  /** The result itself when the worker sent it inline (only as the key enters memory). */
  value?: InlineValue;
}
export interface TaskErredMsgToClient {
  op: 'task-erred';
  key: Key;
  exception: WireError;
}
/** The data of a key is gone and cannot be recomputed (e.g. scattered data on a dead worker). */
export interface LostDataMsg {
  op: 'lost-data';
  key: Key;
}
export interface CancelledKeysMsg {
  op: 'cancelled-keys';
  keys: Key[];
  reason?: string;
}
export type SchedulerToClientMsg = KeyInMemoryMsg | TaskErredMsgToClient | LostDataMsg | CancelledKeysMsg | StreamBarrierReplyMsg;
export type ClientToSchedulerMsg =
  | UpdateGraphMsg
  | ClientDesiresKeysMsg
  | ClientReleasesKeysMsg
  | HeartbeatClientMsg
  | CloseClientMsg
  | StreamBarrierMsg;

// ---------------------------------------------------------------------------------------------
// Worker -> scheduler

export interface RegisterWorkerRequest {
  op: 'register-worker';
  address: Address;
  name: string;
  host: string;
  nthreads: number;
  memoryLimit: number;
  resources: Record<string, number>;
  /** Data the worker already holds (reconnecting after a scheduler restart). */
  nbytes: Record<Key, number>;
  localDirectory?: string;
  pid?: number;
  versions: Record<string, string>;
  /** Ports of the worker's other servers on its host, e.g. `{dashboard: 40123}`. */
  services?: Record<string, number>;
  /** Rpc address of the nanny running this worker process (it serves `restart`). */
  nanny?: Address;
}
export interface RegisterWorkerReply {
  schedulerId: string;
  heartbeatIntervalMs: number;
  /**
   * The worker plugins and uploaded files registered with the scheduler so far
   * (client.registerWorkerPlugin / uploadFile), in registration order, each as `plugin-add`
   * carries it. The worker installs them (setup done, files written) before it reads its stream,
   * so it runs no task without them. Ones registered later come as `plugin-add` rpcs.
   */
  plugins?: WorkerPluginEntry[];
}
/** A worker plugin as the scheduler keeps it: `plugin` is its wire form (opaque to the scheduler). */
export interface WorkerPluginEntry {
  name: string;
  plugin: unknown;
}

/**
 * Rpc: the worker is leaving on purpose. `safe` means its running tasks are not to be counted
 * as suspicious (the worker did not die while running them).
 */
export interface UnregisterWorkerRequest {
  op: 'unregister-worker';
  address: Address;
  safe: boolean;
}

export interface StartStop {
  action: 'compute' | 'transfer' | 'disk-read' | 'disk-write';
  /** Milliseconds since the Unix epoch; may carry a fraction (a compute's stop does: its duration is measured on a monotonic clock). */
  start: number;
  stop: number;
  source?: Address;
}

export interface TaskFinishedMsg {
  op: 'task-finished';
  key: Key;
  nbytes: number;
  type?: string;
  /** The result, when it is an InlineValue. */
  value?: InlineValue;
  startstops: StartStop[];
  stimulusId: StimulusId;
}
export interface TaskErredMsg {
  op: 'task-erred';
  key: Key;
  exception: WireError;
  startstops: StartStop[];
  stimulusId: StimulusId;
}
/** The worker dropped its copy of a key (memory pressure, or it was asked to). */
export interface ReleaseWorkerDataMsg {
  op: 'release-worker-data';
  key: Key;
  stimulusId: StimulusId;
}
/** No listed holder had the data of `key`; `errantWorker` was asked and did not have it. */
export interface MissingDataMsg {
  op: 'missing-data';
  key: Key;
  errantWorker: Address;
  stimulusId: StimulusId;
}
/** The worker now holds replicas of keys it fetched (so who_has can be updated). */
export interface AddKeysMsg {
  op: 'add-keys';
  keys: Key[];
  nbytes: Record<Key, number>;
  stimulusId: StimulusId;
}
export interface KeepAliveMsg {
  op: 'keep-alive';
}
/** The worker paused (memory pressure: no new tasks start there) or runs again. */
export interface WorkerStatusChangeMsg {
  op: 'worker-status-change';
  status: 'paused' | 'running';
  stimulusId: StimulusId;
}
/**
 * A structured event from task code (getWorker().logEvent) for the scheduler's event log, the
 * same op clients send on their stream (client.logEvent): `topic` one topic or several.
 */
export interface LogEventMsg {
  op: 'log-event';
  topic: string | string[];
  msg: unknown;
}
/**
 * The worker's answer to a steal-request: the state `key` was in when the request arrived (null:
 * unknown there). 'waiting', 'ready' and 'constrained' mean the worker gave the task up and the
 * scheduler may run it elsewhere; any other state means it stays.
 */
export interface StealResponseMsg {
  op: 'steal-response';
  key: Key;
  state: string | null;
  stimulusId: StimulusId;
}
export type WorkerToSchedulerMsg =
  | TaskFinishedMsg
  | StealResponseMsg
  | TaskErredMsg
  | ReleaseWorkerDataMsg
  | MissingDataMsg
  | AddKeysMsg
  | KeepAliveMsg
  | WorkerStatusChangeMsg
  | LogEventMsg;

export interface WorkerMetrics {
  executing: number;
  ready: number;
  inMemory: number;
  inFlight: number;
  bytesInFlight: number;
  memory: number;
  managedBytes: number;
  spilledBytes: number;
  cpu: number;
  time: number;
}
/** Rpc. Reply `{status:'OK', heartbeatIntervalMs}`, or `{status:'missing'}` telling the worker to re-register. */
export interface HeartbeatWorkerRequest {
  op: 'heartbeat-worker';
  address: Address;
  now: number;
  metrics: WorkerMetrics;
}

// ---------------------------------------------------------------------------------------------
// Scheduler -> worker (stream)

/**
 * A compute-task's dependencies as parallel arrays, not records keyed by dependency: a worker
 * decoded the records of a task summing 10 000 results (a dictionary object per record, every key
 * a new property name) in ~20 ms cold; these arrays take ~5. `keys`, `nbytes` and `whoHas` have
 * one entry per dependency, in the same order. task-dependencies.ts builds, checks and converts
 * them to the reference's records.
 */
export interface TaskDependencies {
  /** Every dependency, once. */
  keys: Key[];
  /** `nbytes[i]`: the size in bytes of `keys[i]` (the scheduler's default guess while unknown). */
  nbytes: number[];
  /** Workers holding one or more of the dependencies, each once; never the receiving worker. */
  holders: Address[];
  /**
   * `whoHas[i]`: where `keys[i]` can be fetched from, as indexes into `holders`. Empty when no
   * other worker holds it (the receiving worker holds it, or nobody does yet).
   */
  whoHas: number[][];
}

export interface ComputeTaskMsg {
  op: 'compute-task';
  key: Key;
  spec: WireRunSpec;
  /** Compared element-wise, lower first: [-userPriority, generation, order]. */
  priority: number[];
  /** The task's dependencies; absent when it has none. */
  dependencies?: TaskDependencies;
  resources?: Record<string, number>;
  /** Expected compute time in seconds (prefix average), for the worker's own bookkeeping. */
  duration?: number;
  annotations?: Record<string, unknown>;
  stimulusId: StimulusId;
}
export interface FreeKeysMsg {
  op: 'free-keys';
  keys: Key[];
  stimulusId: StimulusId;
}
/** Fetch replicas of keys from the listed holders (replicate, rebalance, retire). */
export interface AcquireReplicasMsg {
  op: 'acquire-replicas';
  whoHas: Record<Key, Address[]>;
  nbytes: Record<Key, number>;
  stimulusId: StimulusId;
}
/** Drop these replicas: other workers hold copies. */
export interface RemoveReplicasMsg {
  op: 'remove-replicas';
  keys: Key[];
  stimulusId: StimulusId;
}
export interface CloseWorkerMsg {
  op: 'close';
  reason: string;
}
/**
 * The scheduler removed `worker` (closed, crashed, or silent past its TTL): forget what it held
 * and drop connections to it, so a transfer from a frozen peer does not wait forever.
 */
export interface RemoveWorkerMsg {
  op: 'remove-worker';
  worker: Address;
  stimulusId: StimulusId;
}
/**
 * Work stealing: give up `key` if it has not started (the reference's transactional stealing);
 * the worker answers with a steal-response either way.
 */
export interface StealRequestMsg {
  op: 'steal-request';
  key: Key;
  stimulusId: StimulusId;
}
export type SchedulerToWorkerMsg =
  | ComputeTaskMsg
  | StealRequestMsg
  | FreeKeysMsg
  | AcquireReplicasMsg
  | RemoveReplicasMsg
  | RemoveWorkerMsg
  | CloseWorkerMsg;

// ---------------------------------------------------------------------------------------------
// Rpcs served by workers (to peers, clients and the scheduler)

/** Reply `{status:'OK', data: Record<Key, value>}` for the keys it has, or `{status:'busy'}`. */
export interface GetDataRequest {
  op: 'get-data';
  keys: Key[];
  /** The requesting worker's address, for transfer logs; absent for clients. */
  who?: Address;
}
/**
 * `unsendable`: keys the holder has but cannot send (their values fail to encode: a function or a
 * class instance held by a worker with the inline executor), with why. Not retried elsewhere:
 * every holder would fail the same way.
 */
export type GetDataReply = { status: 'OK'; data: Record<Key, unknown>; unsendable?: Record<Key, WireError> } | { status: 'busy' };
/** Store data directly on the worker (scatter). Reply `{nbytes: Record<Key, number>}`. */
export interface WorkerUpdateDataRequest {
  op: 'update-data';
  data: Record<Key, unknown>;
}
/** Rpc: delete these keys now. */
export interface DeleteDataRequest {
  op: 'delete-data';
  keys: Key[];
}

/** Canonical wire form of a key given as a string or a tuple such as ['x', 0]. */
export function wireKey(key: string | readonly (string | number)[]): Key {
  return typeof key === 'string' ? key : JSON.stringify(key);
}
