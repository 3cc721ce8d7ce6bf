// What code running as a task can learn about its worker (the reference's get_worker): a small
// handle, `TaskWorker`, with the worker's address and name and `logEvent`, which sends a
// structured event to the scheduler's event log (as client.logEvent does). @dd/client's
// getWorker() reads it.
//
// On the main thread (the inline executor) the handle is kept in an AsyncLocalStorage that
// TaskRunner.run enters around the task function, so it follows the task through its awaits, and
// code outside a task (or another Worker's tasks in the same process) does not see it. An
// executor thread runs only its worker's tasks: there it is set for the whole thread. The storage lives on the host
// realm's global under a registered symbol: task code is compiled in the host realm (vm.Script),
// under jest this module runs in another realm, and a task's `require('@dd/client')` may load
// another copy of the packages (dist/ while the worker runs from src/): all must find one storage.

import { AsyncLocalStorage } from 'node:async_hooks';
import * as vm from 'node:vm';
import { encodeMessage } from '@dd/protocol';
import { adoptFromHost } from './realm';

/** The worker a task runs on, as the task sees it. */
export interface TaskWorker {
  /** The worker's rpc address. */
  readonly address: string;
  /** The worker's name (its address unless it was given one). */
  readonly name: string;
  /**
   * Logs a structured event under a topic (or several) in the scheduler's event log, where
   * `client.getEvents(topic)` reads it. Returns at once; `msg` must be plain data.
   */
  logEvent(topic: string | readonly string[], msg: unknown): void;
}

const KEY = Symbol.for('dd.task-worker');
const hostGlobal = vm.runInThisContext('globalThis') as Record<symbol, unknown>;

function storage(): AsyncLocalStorage<TaskWorker> {
  let s = hostGlobal[KEY] as AsyncLocalStorage<TaskWorker> | undefined;
  if (s === undefined) {
    s = new AsyncLocalStorage<TaskWorker>();
    Object.defineProperty(hostGlobal, KEY, { value: s, enumerable: false });
  }
  return s;
}

/** The worker of the task this code runs in, or undefined outside a task. */
export function currentTaskWorker(): TaskWorker | undefined {
  return (hostGlobal[KEY] as AsyncLocalStorage<TaskWorker> | undefined)?.getStore() ?? (hostGlobal[THREAD_KEY] as TaskWorker | undefined);
}

const THREAD_KEY = Symbol.for('dd.task-worker.thread');

/**
 * In an executor thread, which runs nothing but one worker's tasks: the worker for all code of
 * the thread. No AsyncLocalStorage there: on Node 20 a storage that was entered once costs every
 * promise of the thread a hook.
 */
export function setThreadTaskWorker(worker: TaskWorker): void {
  Object.defineProperty(hostGlobal, THREAD_KEY, { value: worker, enumerable: false, configurable: true, writable: true });
}

/** Runs `fn` as task code of `worker` (currentTaskWorker() sees it, also after awaits). */
export function runAsTaskOf<T>(worker: TaskWorker, fn: () => T): T {
  return storage().run(worker, fn);
}

/** Checks a logEvent topic: a string or a non-empty array of strings. */
export function checkEventTopic(topic: unknown): string | string[] {
  if (typeof topic === 'string') return topic;
  if (Array.isArray(topic) && topic.length > 0 && topic.every((t) => typeof t === 'string')) return [...(topic as string[])];
  throw new TypeError('logEvent(topic, msg): topic must be a string or a non-empty array of strings');
}

/**
 * Checks that a logEvent message can travel to the scheduler, and returns it ready to send (in
 * this realm; undefined as null). An unencodable message must fail here, in the caller: on the
 * worker's stream it would fail the whole batch, and the stream with it.
 */
export function checkEventMessage(msg: unknown): unknown {
  // Task code makes its messages in the host realm (under jest, not this one): adopt them for the encoder.
  const m = msg === undefined ? null : adoptFromHost(msg);
  try {
    encodeMessage({ op: 'log-event', topic: '', msg: m });
  } catch (err) {
    throw new TypeError(`logEvent(topic, msg): msg cannot be sent to the scheduler (${(err as Error)?.message ?? err}); log plain data`, { cause: err });
  }
  return m;
}

/** A frozen TaskWorker whose logEvent checks the topic and the message, then hands them to `send`. */
export function taskWorkerHandle(address: string, name: string, send: (topic: string | string[], msg: unknown) => void): TaskWorker {
  return Object.freeze({
    address,
    name,
    logEvent(topic: string | readonly string[], msg: unknown): void {
      send(checkEventTopic(topic), checkEventMessage(msg));
    },
  });
}
