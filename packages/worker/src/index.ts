export * from './worker-state';
export * from './events';
export * from './errors';
export { sizeof } from './sizeof';
export { MemoryStore, type DataStore } from './data-store';
export { SpillStore, type SpillStoreOptions, type SpillStats } from './spill-store';
export { MemoryMonitor, DEFAULT_MEMORY_FRACTIONS, type MemoryFractions, type MemoryMonitorOptions } from './memory-monitor';
export { createLocalDirectory, prepareLocalDirectory, purgeStaleLocalDirectories } from './local-directory';
export { GarbageDebt, garbageCollector, garbageDebtSettings, workerProcessEnv, type GarbageDebtOptions } from './garbage';
export {
  InlineExecutor,
  ThreadPoolExecutor,
  createExecutor,
  executorThreadPath,
  type Executor,
  type ExecutorJob,
  type ExecutorOptions,
  type TaskOutcome,
} from './executor';
export { TaskRunner, wireError } from './task-runner';
export { currentTaskWorker, runAsTaskOf, setThreadTaskWorker, taskWorkerHandle, checkEventTopic, checkEventMessage, type TaskWorker } from './task-context';
export { Worker, type WorkerStatus } from './worker';
export { WorkerPlugins, type WorkerPlugin, type PluginSpec, type PluginReply } from './plugins';
export { WorkerRun, workerVersions, type RunReply } from './run';
export { saveUpload, checkUploadName } from './uploads';
export { compileWorkerOptions, type WorkerOptions, type CompiledWorkerOptions } from './worker-options';
export { WorkerHttpServer, WorkerMetrics, type WorkerHttpSource, type WorkerHttpOptions } from './http-server';
export { TransferStats } from './transfer-stats';
