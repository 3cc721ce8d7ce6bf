// Internals for tests and sibling packages; not a stable API.
export * from './index';
export { FutureState } from './future';
export { toFunctionRef, functionSource, functionName } from './function-ref';
export { taskKey, dataKey, randomToken, typeName } from './keys';
export { replaceFutures, collectFutures, substituteFutures, SKIP } from './structure';
export { commLink, type SchedulerLink, type LinkFactory, type LinkHandlers, type LinkOptions } from './link';
export { orderGraph } from './order';
export { lowerGraph, graphEntries, graphDefinitions, resolveKeys, identity, type GraphTask } from './graph';
export { collectGraph, computeDelayed, persistDelayed } from './delayed';
