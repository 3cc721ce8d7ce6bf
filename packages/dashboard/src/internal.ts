// Internals for tests and sibling packages (not a stable API).
export * from './index';
export { LagMonitor } from './lag';
