// The cluster-management extensions (task stream, run/versions/shutdown, replicate, rebalance,
// retire-workers, plugins), registered beside the built-in ones with a wider host
// (cluster-host.ts).

import type { ClusterHost } from './cluster-host';
import type { SchedulerExtension } from './extension';
import { ManagementExtension } from './management';
import { PluginsExtension } from './plugins';
import { TaskStreamExtension } from './task-stream';

export type { ClusterHost } from './cluster-host';
export { ManagementExtension, ManagementError, ManagementTimeoutError, schedulerVersions, type RunReply } from './management';
export { TaskStreamExtension, type TaskStreamRecord } from './task-stream';
export { PluginsExtension, type SchedulerPlugin, type UpdateGraphInfo } from './plugins';

/** `scheduler` is what scheduler plugins' hooks receive. */
export function clusterExtensions(host: ClusterHost, scheduler: unknown): SchedulerExtension[] {
  return [new TaskStreamExtension(host), new ManagementExtension(host), new PluginsExtension(host, scheduler)];
}
