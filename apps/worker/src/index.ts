export { main } from './main';
export { WorkerSupervisor, workerProcessEntry, type SupervisorOptions } from './supervisor';
export { buildCommand, compileWorkerCli, memoryLimitFor, schedulerAddressFrom, type WorkerProcessOptions, type CompiledWorkerCli } from './options';
