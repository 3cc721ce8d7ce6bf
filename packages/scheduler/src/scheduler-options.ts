// Options of the Scheduler server, compiled once with defaults.

import type { CommOptions, Logger } from '@dd/comm';
import type { SchedulerStateOptions } from './scheduler-state';

export interface SchedulerOptions extends Omit<SchedulerStateOptions, 'validate' | 'allowedFailures' | 'fifoTimeoutMs'> {
  /** Listen address, e.g. `tcp://127.0.0.1:8786`, `tcp://0.0.0.0:0`, `inproc://`. Default `tcp://127.0.0.1:0`. */
  address?: string;
  /** Check state-machine invariants after every transition (tests). Default false. */
  validate?: boolean;
  /** A worker silent (no heartbeat) for longer than this is removed. Default 30 s. */
  workerTtlMs?: number;
  /** Heartbeat interval told to workers at registration. Default 1 s. */
  heartbeatIntervalMs?: number;
  /** Worker deaths a task survives before it errs with KilledWorker. Default 3. */
  allowedFailures?: number;
  /** Default fifo timeout for submissions that do not give one. Default 100 ms. */
  fifoTimeoutMs?: number;
  /** Close the scheduler after this long with no clients and no work; null = never. Default null. */
  idleTimeoutMs?: number | null;
  /**
   * BatchedSend interval for streams to workers and clients. Default 0: a message is written at
   * once when the stream is idle, and messages queued while a write is in progress go together
   * in the next write (coalescing under load without adding latency to a lone message). A
   * positive value holds each batch up to that many ms.
   */
  batchIntervalMs?: number;
  /** How often work stealing balances the workers, when it is on (`workStealing`). Default 100 ms. */
  workStealingIntervalMs?: number;
  /** Timeout for rpcs the scheduler makes to workers (gather, broadcast). Default 30 s. */
  rpcTimeoutMs?: number;
  /** Transport options (TLS material, frame limits, compression). */
  comm?: CommOptions;
  /** Scheduler id; default `Scheduler-<uuid>`. */
  id?: string;
  logger?: Logger;
}

export interface CompiledSchedulerOptions {
  address: string;
  validate: boolean;
  workerTtlMs: number;
  heartbeatIntervalMs: number;
  allowedFailures: number;
  fifoTimeoutMs: number;
  idleTimeoutMs: number | null;
  batchIntervalMs: number;
  workStealing: boolean;
  workStealingIntervalMs: number;
  rpcTimeoutMs: number;
  comm: CommOptions;
  id: string | undefined;
  logger: Logger | undefined;
  state: SchedulerStateOptions;
}

export function compileSchedulerOptions(o: SchedulerOptions = {}): CompiledSchedulerOptions {
  const positive = (name: string, v: number | undefined, d: number): number => {
    const x = v ?? d;
    if (typeof x !== 'number' || !(x > 0)) throw new TypeError(`scheduler option ${name} must be a positive number, got ${String(v)}`);
    return x;
  };
  const heartbeatIntervalMs = positive('heartbeatIntervalMs', o.heartbeatIntervalMs, 1000);
  const c: CompiledSchedulerOptions = {
    address: o.address ?? 'tcp://127.0.0.1:0',
    validate: o.validate ?? false,
    workerTtlMs: positive('workerTtlMs', o.workerTtlMs, 30_000),
    heartbeatIntervalMs,
    allowedFailures: o.allowedFailures ?? 3,
    fifoTimeoutMs: o.fifoTimeoutMs ?? 100,
    idleTimeoutMs: o.idleTimeoutMs ?? null,
    batchIntervalMs: o.batchIntervalMs ?? 0,
    workStealing: o.workStealing ?? true,
    workStealingIntervalMs: positive('workStealingIntervalMs', o.workStealingIntervalMs, 100),
    rpcTimeoutMs: positive('rpcTimeoutMs', o.rpcTimeoutMs, 30_000),
    comm: o.comm ?? {},
    id: o.id,
    logger: o.logger,
    state: {},
  };
  const state: SchedulerStateOptions = {
    validate: c.validate,
    allowedFailures: c.allowedFailures,
    fifoTimeoutMs: c.fifoTimeoutMs,
    workStealing: c.workStealing,
  };
  if (o.defaultTaskDurationMs !== undefined) state.defaultTaskDurationMs = o.defaultTaskDurationMs;
  if (o.bandwidth !== undefined) state.bandwidth = o.bandwidth;
  if (o.transferLatencyMs !== undefined) state.transferLatencyMs = o.transferLatencyMs;
  if (o.defaultDataSize !== undefined) state.defaultDataSize = o.defaultDataSize;
  if (o.transitionLogSize !== undefined) state.transitionLogSize = o.transitionLogSize;
  if (o.clock !== undefined) state.clock = o.clock;
  c.state = state;
  return c;
}
