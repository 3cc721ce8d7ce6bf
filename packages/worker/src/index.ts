export * from './worker-state';
export * from './events';
export * from './errors';
export { sizeof } from './sizeof';
export { MemoryStore, type DataStore } from './data-store';
