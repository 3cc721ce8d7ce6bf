// Scheduler extensions: features beside the state machine (datasets, metadata, events, ...),
// each a small object with rpc handlers and stream handlers, given a narrow host interface
// (feed events, observe stimuli) instead of the Scheduler itself.

import type { Logger } from '@dd/comm';
import { DdError } from '@dd/protocol';
import type { SchedulerEvent } from '../events';
import type { SchedulerObserver } from '../observers';

export type ExtensionMsg = Record<string, unknown>;

export interface ExtensionHost {
  /** Feeds events into the state machine now (after anything queued) and sends the results. */
  feed(...events: SchedulerEvent[]): void;
  /** A fresh stimulus id. */
  sid(prefix: string): string;
  addObserver(observer: SchedulerObserver): () => void;
  readonly logger: Logger;
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface SchedulerExtension {
  readonly name: string;
  /** Rpc ops: the reply is the handler's return value (or its error). */
  readonly handlers?: Readonly<Record<string, (msg: ExtensionMsg) => unknown>>;
  /** Stream ops from clients (`client` is the sending client's id). */
  readonly clientStreamHandlers?: Readonly<Record<string, (msg: ExtensionMsg, client: string) => void>>;
}

/** A request names something that does not exist (dataset, metadata path). */
export class ExtensionKeyError extends DdError {
  override readonly code: string = 'DD_ERR_NOT_FOUND';
}

/** A request would overwrite something it must not (a published dataset name). */
export class ExtensionConflictError extends DdError {
  override readonly code: string = 'DD_ERR_CONFLICT';
}

export function str(m: ExtensionMsg, field: string, op: string): string {
  const v = m[field];
  if (typeof v !== 'string') throw new TypeError(`${op}: field "${field}" must be a string`);
  return v;
}

export function strList(m: ExtensionMsg, field: string, op: string): string[] {
  const v = m[field];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new TypeError(`${op}: field "${field}" must be an array of strings`);
  return v as string[];
}
