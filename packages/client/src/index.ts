// @dd/client public surface.

export {
  Client,
  ClientView,
  explainRemoteError,
  type ClientStatus,
  type ClusterLike,
  type ConnectOptions,
  type ConnectTarget,
  type FutureArgs,
  type Futurized,
  type Gathered,
  type GatherOptions,
} from './client';
export { Future, isFuture, type FutureStatus, type ResultOptions } from './future';
export { wait, asCompleted, AsCompleted, fireAndForget, type WaitOptions, type WaitResult, type ReturnWhen, type AsCompletedOptions } from './wait';
export { ref, isModuleFunction, type ModuleFunction, type Runnable } from './function-ref';
export type { TaskOptions, ScatterOptions, ClientOptions } from './options';
export {
  RemoteError,
  CancelledError,
  FutureLostError,
  FunctionSerializationError,
  ClientClosedError,
  TimeoutError,
  GatherError,
  SchedulerFileError,
} from './errors';
export { LocalCluster, type LocalClusterOptions } from './local-cluster';
export { InvalidGraphError, GraphCycleError } from './graph-errors';
export type { Graph, GraphKey, KeysSpec, GetOptions, GraphOptions } from './graph';
export { delayed, Delayed, isDelayed, type DelayedOptions, type DelayedArg, type DelayedArgs, type Computed } from './delayed';
export { defaultClient } from './default-client';
export { getWorker, getClient, workerClient, secede, rejoin, NoWorkerError, NotSupportedError, type TaskWorker } from './worker-context';
export { Datasets, type PublishOptions } from './cluster-data';
export {
  VersionMismatchError,
  type RunOptions,
  type Versions,
  type TaskStreamRecord,
  type TaskStreamOptions,
  type ManagementOptions,
  type ReplicateOptions,
  type RebalanceOptions,
  type WorkerPlugin,
  type PluginResults,
} from './cluster-management';
export { keySplit } from '@dd/protocol';
export { progress, type ProgressOptions, type ProgressStream, type ProgressSummary, type PrefixProgressCount } from './progress';
export { performanceReport, renderPerformanceReport, type PerformanceReportOptions, type PerformanceReportData } from './performance-report';
