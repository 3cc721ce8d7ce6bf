export * from './worker-state';
export * from './events';
export * from './errors';
export { sizeof } from './sizeof';
export { MemoryStore, type DataStore } from './data-store';
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
export { Worker, type WorkerStatus } from './worker';
export { compileWorkerOptions, type WorkerOptions, type CompiledWorkerOptions } from './worker-options';
