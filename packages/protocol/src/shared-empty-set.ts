// One empty Set that many objects share until each needs a set of its own: the scheduler's
// TaskState and the worker's WorkerTask hold several sets that stay empty for most tasks, and a
// fresh Set per field per task was much of their garbage. (Here because both state machines
// depend on this package; nothing here is part of the wire format.) In the same spirit,
// clearIfAny: the state machines empty many sets and maps that are already empty.

class SharedEmptySet extends Set<never> {
  override add(): this {
    throw new Error('internal error: add to the shared empty set (take ownSet(set) first)');
  }
}

const SHARED: Set<never> = new SharedEmptySet();

/** The shared empty set, typed for the field it starts. */
export function sharedEmptySet<T>(): Set<T> {
  return SHARED as Set<T>;
}

/** `set` itself, or a fresh Set if it is the shared empty one: assign it back, then add. */
export function ownSet<T>(set: Set<T>): Set<T> {
  return set === SHARED ? new Set<T>() : set;
}

/**
 * Empties a Set or Map that holds something. V8's clear() allocates a fresh table even when the
 * collection is empty (2 million clears of an empty Set: ~230 young collections), and the state
 * machines clear several mostly empty sets per task.
 */
export function clearIfAny(collection: { readonly size: number; clear(): void }): void {
  if (collection.size > 0) collection.clear();
}
