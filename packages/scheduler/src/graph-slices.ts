// Slicing a large submission of independent tasks (a client's map) so that workers start on the
// first tasks while the scheduler still places the rest. The state machine handles one
// update-graph as one synchronous stimulus, as the reference does: for a cold 10 000-task map
// that kept both workers idle for ~200-300 ms until every task was placed and encoded. The
// server (scheduler.ts) instead feeds the slices one event-loop turn apart; each slice's
// compute-task messages are written before the next slice is handled (with the default
// batchIntervalMs of 0). Request-reply calls handle all remaining slices first.
//
// Only submissions whose tasks are all wanted by the client (keys in the same order as the tasks)
// and none of which depends on another task of the same message are sliced: each slice is then a
// complete update-graph on its own (its dependencies already exist in the scheduler). Tasks get
// the priorities of the whole message, and since only submissions whose priorities rise with the
// position are sliced (orders non-decreasing, no per-task priority annotation), the first slice
// holds the tasks that run first. Placement runs (co-assignment of neighbouring root tasks) are
// per slice. Graphs (get, compute, persist) go whole.

import type { UpdateGraphEvent } from './events';

/** Tasks per slice. */
export const UPDATE_GRAPH_SLICE = 1000;

/**
 * The slices of `ev`, in order, or `[ev]` when it is small or not a set of independent wanted
 * tasks. Every task keeps its order within the whole submission (the `order` it was sent with,
 * or its position), and later slices are marked `continuation` so they stay in the first slice's
 * priority generation: priorities are exactly those of the unsliced message.
 */
export function sliceIndependentGraph(ev: UpdateGraphEvent, sliceSize: number = UPDATE_GRAPH_SLICE): UpdateGraphEvent[] {
  const { tasks, keys } = ev;
  const n = tasks.length;
  if (n <= 2 * sliceSize || keys.length !== n) return [ev];
  const own = new Set<string>();
  let lastOrder = -Infinity;
  for (let i = 0; i < n; i++) {
    const td = tasks[i]!;
    const key = td.key;
    if (keys[i] !== key || own.has(key)) return [ev];
    own.add(key);
    // A later task that would run before an earlier one: a worker could start lower-priority
    // tasks of the first slice before it hears of the higher ones in a later slice.
    const order = td.order ?? i;
    if (order < lastOrder || td.annotations?.['priority'] !== undefined) return [ev];
    lastOrder = order;
  }
  for (let i = 0; i < n; i++) {
    const deps = tasks[i]!.dependencies;
    for (let j = 0; j < deps.length; j++) if (own.has(deps[j]!)) return [ev];
  }
  const slices: UpdateGraphEvent[] = [];
  for (let start = 0; start < n; start += sliceSize) {
    const part = tasks.slice(start, start + sliceSize);
    for (let i = 0; i < part.length; i++) {
      const td = part[i]!;
      if (td.order === undefined) part[i] = { ...td, order: start + i };
    }
    const slice: UpdateGraphEvent = { ...ev, tasks: part, keys: keys.slice(start, start + sliceSize) };
    if (start > 0) slice.continuation = true;
    slices.push(slice);
  }
  return slices;
}
