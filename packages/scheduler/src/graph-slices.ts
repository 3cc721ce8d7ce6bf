// Slicing a large submission (a client's map, or a large graph) so that workers start on the
// first tasks while the scheduler still places the rest. The state machine handles one
// update-graph as one synchronous stimulus, as the reference does: for a cold 10 000-task map
// that kept both workers idle for ~200-300 ms until every task was placed and encoded. The
// server (scheduler.ts) instead feeds the slices one event-loop turn apart; each slice's
// compute-task messages are written before the next slice is handled (with the default
// batchIntervalMs of 0). Request-reply calls handle all remaining slices first.
//
// Which submissions are sliced, in slices of consecutive tasks:
//  - only those whose priorities rise with the position (orders non-decreasing, no per-task
//    priority annotation), so the first slice holds the tasks that run first, and whose tasks
//    come after the tasks of the same message they depend on (a client's graph order does);
//  - a map (every task wanted by the client, keys in task order, no dependency inside the
//    message): each slice is a complete update-graph of the client's;
//  - a graph whose every task is needed by the keys the client wants: the slices before the last
//    are wanted by a holder, a pseudo-client of this submission only (the state machine keeps
//    only what some client wants or what wanted tasks need), and the last slice carries the
//    client's own keys; the server then removes the holder, which releases what nothing else
//    needs, as the unsliced message would never have kept it.
// Everything else goes whole. Tasks keep the priorities of the whole message; placement runs
// (co-assignment of neighbouring root tasks) are per slice.

import type { Key } from '@dd/protocol';
import type { UpdateGraphEvent } from './events';

/** Tasks per slice. */
export const UPDATE_GRAPH_SLICE = 1000;

export interface GraphSlicing {
  /** The update-graph events to feed, in order (`[ev]` when it goes whole). */
  slices: UpdateGraphEvent[];
  /** For a sliced graph: the pseudo-client that wants the earlier slices; remove it after the last. */
  holder?: string;
}

/**
 * How to feed `ev`: whole, or in slices of `sliceSize` tasks. Every task keeps its order within
 * the whole submission (the `order` it was sent with, or its position), and later slices are
 * marked `continuation` so they stay in the first slice's priority generation: priorities are
 * exactly those of the unsliced message. `holder` names the pseudo-client a sliced graph uses.
 */
export function sliceGraph(ev: UpdateGraphEvent, sliceSize: number = UPDATE_GRAPH_SLICE, holder = `${ev.client}/slices/${ev.stimulusId}`): GraphSlicing {
  const whole: GraphSlicing = { slices: [ev] };
  const { tasks, keys } = ev;
  const n = tasks.length;
  if (n <= 2 * sliceSize) return whole;
  const index = new Map<string, number>();
  let lastOrder = -Infinity;
  for (let i = 0; i < n; i++) {
    const td = tasks[i]!;
    if (index.has(td.key)) return whole;
    index.set(td.key, i);
    // A later task that would run before an earlier one: a worker could start lower-priority
    // tasks of the first slice before it hears of the higher ones in a later slice.
    const order = td.order ?? i;
    if (order < lastOrder || td.annotations?.['priority'] !== undefined) return whole;
    lastOrder = order;
  }
  let internal = false;
  for (let i = 0; i < n; i++) {
    const deps = tasks[i]!.dependencies;
    for (let j = 0; j < deps.length; j++) {
      const d = index.get(deps[j]!);
      if (d === undefined) continue;
      if (d >= i) return whole; // not in dependency order: a slice would miss its inputs
      internal = true;
    }
  }
  const isMap = !internal && keys.length === n && keys.every((k, i) => k === tasks[i]!.key);
  if (!isMap && !everyTaskNeeded(ev, index)) return whole;

  const slices: UpdateGraphEvent[] = [];
  for (let start = 0; start < n; start += sliceSize) {
    const part = tasks.slice(start, start + sliceSize);
    for (let i = 0; i < part.length; i++) {
      const td = part[i]!;
      if (td.order === undefined) part[i] = { ...td, order: start + i };
    }
    const last = start + sliceSize >= n;
    let sliceKeys: Key[];
    if (isMap) sliceKeys = keys.slice(start, start + sliceSize);
    else if (last) sliceKeys = keys;
    else sliceKeys = part.map((t) => t.key);
    const slice: UpdateGraphEvent = { ...ev, tasks: part, keys: sliceKeys };
    if (!isMap && !last) slice.client = holder;
    if (start > 0) slice.continuation = true;
    slices.push(slice);
  }
  return isMap ? { slices } : { slices, holder };
}

/** Whether every task of the message is one the wanted keys need (through dependencies in it). */
function everyTaskNeeded(ev: UpdateGraphEvent, index: ReadonlyMap<string, number>): boolean {
  const needed = new Uint8Array(ev.tasks.length);
  const stack: number[] = [];
  for (const key of ev.keys) {
    const i = index.get(key);
    if (i !== undefined && needed[i] === 0) {
      needed[i] = 1;
      stack.push(i);
    }
  }
  let count = stack.length;
  while (stack.length > 0) {
    const deps = ev.tasks[stack.pop()!]!.dependencies;
    for (let j = 0; j < deps.length; j++) {
      const d = index.get(deps[j]!);
      if (d !== undefined && needed[d] === 0) {
        needed[d] = 1;
        count++;
        stack.push(d);
      }
    }
  }
  return count === ev.tasks.length;
}
