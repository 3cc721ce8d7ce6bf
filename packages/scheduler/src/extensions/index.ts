// The scheduler's built-in extensions, and how their handlers join the server's.

import { DatasetsExtension } from './datasets';
import { EventsExtension } from './events';
import type { ExtensionHost, ExtensionMsg, SchedulerExtension } from './extension';
import { MetadataExtension } from './metadata';

export {
  ExtensionConflictError,
  ExtensionKeyError,
  type ExtensionHost,
  type ExtensionMsg,
  type SchedulerExtension,
} from './extension';
export { DatasetsExtension, DATASET_HOLDER_PREFIX } from './datasets';
export { MetadataExtension } from './metadata';
export { EventsExtension, type EventRecord } from './events';

export function builtinExtensions(host: ExtensionHost): SchedulerExtension[] {
  return [new DatasetsExtension(host), new MetadataExtension(), new EventsExtension(host)];
}

/** Rpc handlers of all extensions (a name used twice is a bug, reported at start). */
export function extensionHandlers(extensions: readonly SchedulerExtension[]): Record<string, (msg: ExtensionMsg) => unknown> {
  const out: Record<string, (msg: ExtensionMsg) => unknown> = {};
  for (const ext of extensions) {
    for (const [op, fn] of Object.entries(ext.handlers ?? {})) {
      if (op in out) throw new Error(`scheduler extension ${ext.name}: op ${op} is registered twice`);
      out[op] = fn;
    }
  }
  return out;
}

export function extensionClientStreamHandlers(extensions: readonly SchedulerExtension[]): Record<string, (msg: ExtensionMsg, client: string) => void> {
  const out: Record<string, (msg: ExtensionMsg, client: string) => void> = {};
  for (const ext of extensions) {
    for (const [op, fn] of Object.entries(ext.clientStreamHandlers ?? {})) {
      if (op in out) throw new Error(`scheduler extension ${ext.name}: stream op ${op} is registered twice`);
      out[op] = fn;
    }
  }
  return out;
}
