// What the dashboard sends to pages (/eventstream JSON): plain data, shared by the server and the
// browser app (no Node types here).

/** One bar of the task stream. Times are epoch ms. */
export interface StreamRecord {
  /** Increasing id: clients ask for records after the last one they have. */
  seq: number;
  key: string;
  prefix: string;
  worker: string;
  /** Thread lane on the worker (0-based); transfers use lane 0. */
  lane: number;
  action: 'compute' | 'transfer' | 'erred' | 'disk-read' | 'disk-write';
  start: number;
  stop: number;
  nbytes?: number;
}

export interface PrefixProgress {
  name: string;
  waiting: number;
  noWorker: number;
  processing: number;
  memory: number;
  erred: number;
  released: number;
  /** Tasks of the prefix known now (not forgotten). */
  alive: number;
  nbytes: number;
}

export interface WorkerSnapshot {
  address: string;
  name: string;
  host: string;
  nthreads: number;
  status: string;
  memoryLimit: number;
  /** Process memory (rss) from the last heartbeat, else the managed bytes. */
  memory: number;
  managed: number;
  spilled: number;
  cpu: number;
  processing: number;
  inMemory: number;
  bytesInFlight: number;
  occupancy: number;
  lastSeen: number;
  /** The worker's own page (`http://host:port/status`), when it serves one. */
  dashboard?: string;
}

export interface Counts {
  tasks: number;
  workers: number;
  clients: number;
  threads: number;
  states: Record<string, number>;
}

export interface Totals {
  tasksFinished: number;
  tasksErred: number;
  bytesTransferred: number;
  transfers: number;
  transitions: number;
  /** Tasks work stealing moved to another worker. */
  stolen: number;
  /** Tasks finished per second over the last few seconds. */
  taskRate: number;
  eventLoopLagMs: { mean: number; max: number; p99: number };
}

export interface Snapshot {
  time: number;
  counts: Counts;
  totals: Totals;
  workers: WorkerSnapshot[];
  prefixes: PrefixProgress[];
}

/** One /eventstream message. */
export interface EventStreamMessage extends Snapshot {
  type: 'update';
  /** New task-stream records since the last message to this client. */
  stream: StreamRecord[];
  lastSeq: number;
}
