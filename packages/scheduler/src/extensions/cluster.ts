// The cluster-management extensions (task stream, run/versions/shutdown, replicate, rebalance,
// retire-workers), registered beside the built-in ones with a wider host (cluster-host.ts).

import type { ClusterHost } from './cluster-host';
import type { SchedulerExtension } from './extension';
import { ManagementExtension } from './management';
import { TaskStreamExtension } from './task-stream';

export type { ClusterHost } from './cluster-host';
export { ManagementExtension, ManagementError, ManagementTimeoutError, schedulerVersions, type RunReply } from './management';
export { TaskStreamExtension, type TaskStreamRecord } from './task-stream';

export function clusterExtensions(host: ClusterHost): SchedulerExtension[] {
  return [new TaskStreamExtension(host), new ManagementExtension(host)];
}
