// Public surface of @dd/scheduler.
export { SchedulerState, compileSchedulerStateOptions, DEFER_RELEASES_ABOVE } from './scheduler-state';
export type { SchedulerStateOptions, CompiledSchedulerStateOptions } from './scheduler-state';
export {
  TaskState,
  WorkerState,
  ClientState,
  TaskPrefix,
  TaskGroup,
  TASK_STATES,
  WORKER_STATUSES,
  FIRE_AND_FORGET_CLIENT,
  comparePriority,
} from './state-types';
/** The reference's key_split and key group (they live in @dd/protocol, shared with clients). */
export { keySplit, keyGroup } from '@dd/protocol';
export type { TaskStateName, WorkerStatus, WorkerInfo } from './state-types';
export {
  InvalidTransitionError,
  TransitionCounterMaxExceededError,
  InvalidSchedulerStateError,
  BadMessageError,
  WorkerExistsError,
  KILLED_WORKER,
  killedWorkerError,
} from './errors';
export type * from './events';
export { planSteals, DEFAULT_STEAL_LIMITS, type StealMove, type StealCosts, type StealLimits } from './stealing';
export { Scheduler } from './scheduler';
export { preload } from './preload';
export type { SchedulerPlugin, UpdateGraphInfo, TaskStreamRecord } from './extensions/cluster';
export { SchedulerObservers, type SchedulerObserver } from './observers';
export { compileSchedulerOptions } from './scheduler-options';
export type { SchedulerOptions, CompiledSchedulerOptions } from './scheduler-options';
