// Public surface of @dd/dashboard.
export { DashboardServer } from './server';
export type { DashboardOptions, EventStreamMessage } from './server';
export { Collector } from './collector';
export type { CollectorOptions, Counts, PrefixProgress, Snapshot, StreamRecord, Totals, WorkerSnapshot } from './collector';
export { SchedulerMetrics } from './metrics';
export type * from './view';
