// Internals for tests and sibling packages (not a stable API).
export * from './index';
export * from './wire-checks';
export * from './extensions';
