// Errors raised by the worker package. Each has a stable `code` (see DdError in @dd/protocol).

import { DdError } from '@dd/protocol';
import type { StoryEntry } from '@dd/protocol';

/** A transition that the table does not allow, even through `released`. Carries the key's story. */
export class InvalidTransitionError extends DdError {
  override readonly code: string = 'DD_ERR_INVALID_TRANSITION';
  constructor(
    readonly key: string,
    readonly start: string,
    readonly finish: string,
    readonly story: StoryEntry[],
  ) {
    super(`invalid worker transition for ${JSON.stringify(key)}: ${start} -> ${finish}\nstory:\n${formatStory(story)}`);
  }
}

/** validateState() found a broken invariant. */
export class InvalidWorkerStateError extends DdError {
  override readonly code: string = 'DD_ERR_INVALID_WORKER_STATE';
  constructor(
    message: string,
    readonly key?: string,
    readonly story: StoryEntry[] = [],
  ) {
    super(story.length ? `${message}\nstory:\n${formatStory(story)}` : message);
  }
}

/** The transitions of one stimulus did not reach a steady state (livelock guard). */
export class TransitionCounterMaxExceededError extends DdError {
  override readonly code: string = 'DD_ERR_TRANSITION_COUNTER';
}

/**
 * A task function sent by source used a variable of its enclosing scope. Raised on the worker
 * in place of the ReferenceError, so the client sees what to change.
 */
export class ClosureVariableError extends DdError {
  override readonly code: string = 'DD_ERR_CLOSURE_VARIABLE';
  constructor(
    readonly functionName: string,
    readonly variable: string,
    options?: { cause?: unknown },
  ) {
    super(
      `task function ${functionName} refers to '${variable}', which is not defined on the worker: ` +
        `functions are sent by source, so they cannot use variables from their enclosing scope. ` +
        `Pass ${variable} as an argument, or define the function in a module and submit it with ref(module, export)`,
      options,
    );
  }
}

/** A preload module (`preload` option, `dd-worker --preload`) could not be loaded, or its ddSetup failed. */
export class PreloadError extends DdError {
  override readonly code: string = 'DD_ERR_PRELOAD';
}

/** The executor could not run a task (its thread died, the pool is closed, ...). */
export class ExecutorError extends DdError {
  override readonly code: string = 'DD_ERR_EXECUTOR';
}

function formatStory(story: StoryEntry[]): string {
  return story
    .slice(-20)
    .map((e) => `  ${JSON.stringify(e)}`)
    .join('\n');
}

/**
 * The worker's local directory (`localDirectory`, `dd-worker --local-directory`; or, without one,
 * a fresh directory under the system's temporary directory) cannot be created or written to.
 */
export class LocalDirectoryError extends DdError {
  override readonly code: string = 'DD_ERR_LOCAL_DIRECTORY';
  constructor(
    readonly directory: string,
    cause: unknown,
  ) {
    super(`Worker: cannot use local directory ${directory}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}
