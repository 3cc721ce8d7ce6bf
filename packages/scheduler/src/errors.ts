// Errors raised by the scheduler. They extend @dd/protocol's DdError (stable `code`,
// symbol-based `instanceof` across realms).

import { DdError } from '@dd/protocol';
import type { Address, Key, StoryEntry, WireError } from '@dd/protocol';

/** A transition between two task states that the table does not allow (a bug, not user error). */
export class InvalidTransitionError extends DdError {
  override readonly code: string = 'DD_ERR_INVALID_TRANSITION';
  constructor(
    readonly key: Key,
    readonly start: string,
    readonly finish: string,
    readonly story: StoryEntry[],
  ) {
    super(`invalid transition of ${key}: ${start} -> ${finish}\nstory:\n${formatStory(story)}`);
  }
}

/** `transitions()` did not reach a steady state within its budget (a livelock). */
export class TransitionCounterMaxExceededError extends DdError {
  override readonly code: string = 'DD_ERR_TRANSITION_COUNTER';
  constructor(
    readonly key: Key,
    readonly count: number,
    readonly story: StoryEntry[],
  ) {
    super(`transitions did not settle after ${count} steps (last key ${key})\nstory:\n${formatStory(story)}`);
  }
}

/** `validateState()` found a broken invariant. */
export class InvalidSchedulerStateError extends DdError {
  override readonly code: string = 'DD_ERR_INVALID_SCHEDULER_STATE';
}

/** A message reached the scheduler without the fields its op requires. */
export class BadMessageError extends DdError {
  override readonly code: string = 'DD_ERR_BAD_MESSAGE';
}

/** A worker tried to register with an address or name already in use. */
export class WorkerExistsError extends DdError {
  override readonly code: string = 'DD_ERR_WORKER_EXISTS';
}

export const KILLED_WORKER = 'KilledWorker';

/** The wire error a task ends with when too many workers died while running it. */
export function killedWorkerError(key: Key, lastWorker: Address, attempts: number): WireError {
  return {
    name: KILLED_WORKER,
    message:
      `Attempted to run task ${key} on ${attempts} different workers, but all those workers died ` +
      `while running it. The last worker that attempted to run the task was ${lastWorker}.`,
    code: 'DD_ERR_KILLED_WORKER',
    data: { task: key, lastWorker },
  };
}

function formatStory(story: StoryEntry[]): string {
  return story.map((e) => `  ${JSON.stringify(e)}`).join('\n');
}
