// Inside a task (on a worker): `getWorker()` gives the worker the task runs on, as a small handle
// (@dd/worker's TaskWorker: `address`, `name`, `logEvent(topic, msg)` into the scheduler's event
// log). It works with both executors (thread pool and inline) and after the task's awaits, and
// throws NoWorkerError anywhere else. The reference's other task-side helpers (get_client,
// secede, rejoin, worker_client: tasks that submit work) are not supported yet: they throw
// NotSupportedError rather than doing something half right.

import { DdError } from '@dd/protocol';
import { currentTaskWorker, type TaskWorker } from '@dd/worker';

export type { TaskWorker };

/** getWorker() was called outside a task. */
export class NoWorkerError extends DdError {
  override readonly code: string = 'DD_ERR_NO_WORKER';
}

/** A part of the reference's API that dd does not support yet. */
export class NotSupportedError extends DdError {
  override readonly code: string = 'DD_ERR_NOT_SUPPORTED';
}

/**
 * The worker running the current task: `{ address, name, logEvent(topic, msg) }`. Throws
 * NoWorkerError outside a task (in the client's process, or on a worker outside task code).
 */
export function getWorker(): TaskWorker {
  const worker = currentTaskWorker();
  if (worker === undefined) {
    throw new NoWorkerError(
      'getWorker() was called outside a task: it works only in code that a worker runs as a task ' +
        '(a function given to submit, map, compute, ...), including after its awaits',
    );
  }
  return worker;
}

function notSupported(name: string): never {
  throw new NotSupportedError(
    `${name}() is not supported yet: tasks cannot submit work or wait for other tasks from inside a ` +
      'task. Submit the follow-up work from the client (e.g. with asCompleted), or build it into one graph (delayed)',
  );
}

/** Not supported yet: throws NotSupportedError. */
export function getClient(): never {
  return notSupported('getClient');
}

/** Not supported yet: throws NotSupportedError. */
export function workerClient(): never {
  return notSupported('workerClient');
}

/** Not supported yet: throws NotSupportedError. */
export function secede(): never {
  return notSupported('secede');
}

/** Not supported yet: throws NotSupportedError. */
export function rejoin(): never {
  return notSupported('rejoin');
}
