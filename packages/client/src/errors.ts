// Errors the client raises. Each failure is its own class with a stable `code`, built on
// @dd/protocol's DdError so `instanceof` works across realms.

import { DdError, type DdErrorOptions } from '@dd/protocol';

/**
 * A task failed on a worker (or a task it depends on failed): @dd/comm's RemoteError, with
 * `key` naming the task that raised it and the remote stack first in `stack`.
 */
export { RemoteError } from '@dd/comm';

/** The future (or one it depends on) was cancelled. */
export class CancelledError extends DdError {
  override readonly code: string = 'DD_ERR_CANCELLED';
  constructor(readonly key: string, reason?: string, options?: DdErrorOptions) {
    super(`task ${key} was cancelled${reason === undefined ? '' : `: ${reason}`}`, options);
  }
}

/** The data of a future is gone and cannot be recomputed (e.g. scattered data on a dead worker). */
export class FutureLostError extends DdError {
  override readonly code: string = 'DD_ERR_FUTURE_LOST';
  constructor(readonly key: string, reason?: string, options?: DdErrorOptions) {
    super(`the data of ${key} is lost${reason === undefined ? '' : `: ${reason}`}`, options);
  }
}

/** A function cannot travel to workers (bound or native function, unparsable source, ...). */
export class FunctionSerializationError extends DdError {
  override readonly code: string = 'DD_ERR_FUNCTION_SERIALIZATION';
}

/** The client is closed (or closing) and cannot do what was asked. */
export class ClientClosedError extends DdError {
  override readonly code: string = 'DD_ERR_CLIENT_CLOSED';
}

/** A scheduler file cannot be written: this client already has one (written, or connected through). */
export class SchedulerFileError extends DdError {
  override readonly code: string = 'DD_ERR_SCHEDULER_FILE';
}

/** A client operation did not finish in the time it was given (@dd/comm's TimeoutError). */
export { TimeoutError } from '@dd/comm';

/** A worker or the scheduler could not be reached / did not have what was asked. */
export class GatherError extends DdError {
  override readonly code: string = 'DD_ERR_GATHER';
}
