// Errors the client raises. Each failure is its own class with a stable `code`, built on
// @dd/protocol's DdError so `instanceof` works across realms.

import { DdError, type DdErrorOptions, type WireError } from '@dd/protocol';

/**
 * A task failed on a worker (or a task it depends on failed). `remoteName`, `remoteMessage`
 * and `remoteStack` are the remote error's own fields; `key` is the task that raised it.
 * The class name matches @dd/comm's RemoteError (the rpc failure), and DdError's name-based
 * `instanceof` makes either class recognise both.
 */
export class RemoteError extends DdError {
  override readonly code: string = 'DD_ERR_REMOTE';
  readonly remoteName: string;
  readonly remoteMessage: string;
  readonly remoteStack: string | undefined;
  readonly remoteCode: string | undefined;
  /** Extra detail the remote side attached (e.g. KilledWorker's task and worker). */
  readonly data: Record<string, unknown> | undefined;

  constructor(wire: WireError, readonly key?: string) {
    super(`${wire.name}: ${wire.message}`);
    this.remoteName = wire.name;
    this.remoteMessage = wire.message;
    this.remoteStack = wire.stack;
    this.remoteCode = wire.code;
    this.data = wire.data;
    if (wire.stack !== undefined) {
      // The remote stack is what the user wants to read; keep the local frames after it.
      const local = (this.stack ?? '').split('\n').slice(1).join('\n');
      this.stack = `${this.name}: ${this.message}\n  remote stack${key === undefined ? '' : ` (task ${key})`}:\n${indent(wire.stack)}\n  local stack:\n${local}`;
    }
  }
}

function indent(text: string): string {
  return text.split('\n').map((l) => `    ${l.trimStart()}`).join('\n');
}

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

/** A client operation did not finish in the time it was given. */
export class ClientTimeoutError extends DdError {
  override readonly code: string = 'DD_ERR_TIMEOUT';
  override readonly name: string = 'TimeoutError';
}

/** A worker or the scheduler could not be reached / did not have what was asked. */
export class GatherError extends DdError {
  override readonly code: string = 'DD_ERR_GATHER';
}
