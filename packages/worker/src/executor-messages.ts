// Messages between the thread pool (main thread) and its executor threads.

import type { Key, WireError, WireRunSpec } from '@dd/protocol';

export interface ThreadRequest {
  id: number;
  spec: WireRunSpec;
  /**
   * Dependency values by key. A Map: structured clone copies one with 10 000 entries in ~4.5 ms,
   * a plain object with as many keys in 9-13 (30 the first time), which is then a slow
   * dictionary-mode object on the thread's side.
   */
  deps: Map<Key, unknown>;
  /** Dependencies that were Node Buffers (structured clone delivers Uint8Arrays). */
  bufferKeys?: Key[];
  /**
   * Bytes of the binary dependencies. Once the task ends, the thread's references to them are
   * garbage that keeps their memory alive (copies, or shared memory the worker itself may have
   * let go of) until the thread's own collector runs.
   */
  depBytes?: number;
}

/** Not a task: the pool asks the thread to collect its garbage now (the worker is short of memory). */
export interface ThreadCollectRequest {
  collect: true;
}

/** workerData of an executor thread. */
export interface ThreadSettings {
  cwd: string;
  uploadDirectory?: string | undefined;
  /** Under a memory limit: when the thread collects its garbage (garbage.ts). */
  garbage?: { everyBytes: number; aboveBytes: number } | undefined;
}

export type ThreadResponse =
  | { id: number; ok: true; value: unknown; nbytes: number; type: string; start: number; stop: number; isBuffer: boolean }
  | { id: number; ok: false; error: WireError; start: number; stop: number };

/** Not a task: the worker the thread's tasks run on (getWorker(), task-context.ts), sent once it listens. */
export interface ThreadWorkerInfo {
  workerInfo: { address: string; name: string };
}

/** Not a task outcome: a task called getWorker().logEvent(topic, msg); the pool hands it to the worker. */
export interface ThreadLogEvent {
  logEvent: { topic: string | string[]; msg: unknown };
}
