export { main, buildCommand, listenAddress, type SchedulerCliOptions } from './main';
