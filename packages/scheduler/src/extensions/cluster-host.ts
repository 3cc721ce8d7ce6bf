// What the cluster-management extensions (task stream, management, plugins) may do beyond the
// basic ExtensionHost: read the state machine, talk to workers (stream messages and rpcs), let
// a worker go cleanly, and close the scheduler. Scheduler implements it in a few lines; tests
// use a fake.

import type { Address, SchedulerToWorkerMsg } from '@dd/protocol';
import type { SchedulerState } from '../scheduler-state';
import type { ExtensionHost } from './extension';

export interface ClusterHost extends ExtensionHost {
  /** The state machine, for reading only (change it through feed()). */
  readonly state: SchedulerState;
  readonly id: string;
  readonly address: string;
  /** Queue messages on a worker's stream; false if the worker has no stream. */
  sendWorker(address: Address, ...msgs: SchedulerToWorkerMsg[]): boolean;
  /** An rpc to a worker (rejects on failure or after timeoutMs). */
  callWorker<T = unknown>(address: Address, op: string, args: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /**
   * Ask a worker to close, as a clean departure: its processing tasks are not suspicious when
   * its stream ends (the state machine sees remove-worker then).
   */
  closeWorker(address: Address, reason: string): void;
  /** Close the scheduler (after the current rpc has been answered). */
  closeScheduler(): void;
}
