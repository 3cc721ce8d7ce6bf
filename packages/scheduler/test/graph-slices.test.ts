// A large map handed to the state machine in slices (graph-slices.ts): which submissions are
// sliced, and that the slices leave the state machine where the whole message would have, with
// the same priorities and the same placement, even when a fifo timeout passes between slices.

import type { UpdateGraphEvent } from '../src/events';
import { sliceIndependentGraph } from '../src/graph-slices';
import { dummyGraph, dummyTask, dummyWorker, newState, testClock, workerMsgs } from './helpers';

const A = 'tcp://10.0.0.1:1';
const B = 'tcp://10.0.0.2:2';

function mapOf(n: number, prefix = 'inc'): UpdateGraphEvent {
  return dummyGraph('c', Array.from({ length: n }, (_, i) => dummyTask(`${prefix}-${i}`)));
}

describe('sliceIndependentGraph', () => {
  test('a large map of independent wanted tasks is cut into slices that keep their global order', () => {
    const ev = mapOf(25);
    const slices = sliceIndependentGraph(ev, 10);
    expect(slices.map((s) => s.tasks.length)).toEqual([10, 10, 5]);
    expect(slices.map((s) => s.keys)).toEqual([ev.keys.slice(0, 10), ev.keys.slice(10, 20), ev.keys.slice(20)]);
    expect(slices.flatMap((s) => s.tasks.map((t) => t.order))).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(slices.map((s) => s.continuation === true)).toEqual([false, true, true]);
    expect(slices.every((s) => s.stimulusId === ev.stimulusId && s.client === ev.client)).toBe(true);
    // The original event is not modified.
    expect(ev.tasks.every((t) => t.order === undefined)).toBe(true);
  });

  test('orders the client sent are kept', () => {
    const ev = dummyGraph('c', Array.from({ length: 25 }, (_, i) => dummyTask(`t-${i}`, [], { order: 100 + 2 * i })));
    const orders = sliceIndependentGraph(ev, 10).flatMap((s) => s.tasks.map((t) => t.order));
    expect(orders).toEqual(Array.from({ length: 25 }, (_, i) => 100 + 2 * i));
  });

  test('a submission whose later tasks would run first goes whole (decreasing order, priority annotations)', () => {
    const decreasing = dummyGraph('c', Array.from({ length: 25 }, (_, i) => dummyTask(`t-${i}`, [], { order: 100 - i })));
    expect(sliceIndependentGraph(decreasing, 10)).toEqual([decreasing]);
    const annotated = mapOf(25);
    annotated.tasks[20] = dummyTask('inc-20', [], { annotations: { priority: 5 } });
    expect(sliceIndependentGraph(annotated, 10)).toEqual([annotated]);
  });

  test('small submissions, graphs with internal dependencies and partial key lists go whole', () => {
    const small = mapOf(20);
    expect(sliceIndependentGraph(small, 10)).toEqual([small]);

    const chain = dummyGraph('c', Array.from({ length: 25 }, (_, i) => dummyTask(`x-${i}`, i > 0 ? [`x-${i - 1}`] : [])));
    expect(sliceIndependentGraph(chain, 10)).toEqual([chain]);

    const someWanted = mapOf(25);
    someWanted.keys = someWanted.keys.slice(0, 24);
    expect(sliceIndependentGraph(someWanted, 10)).toEqual([someWanted]);

    const reordered = mapOf(25);
    reordered.keys = [...reordered.keys].reverse();
    expect(sliceIndependentGraph(reordered, 10)).toEqual([reordered]);

    const duplicate = mapOf(25);
    duplicate.tasks[3] = dummyTask('inc-2');
    duplicate.keys[3] = 'inc-2';
    expect(sliceIndependentGraph(duplicate, 10)).toEqual([duplicate]);
  });

  test('dependencies on tasks the scheduler already has do not prevent slicing', () => {
    const ev = dummyGraph('c', Array.from({ length: 25 }, (_, i) => dummyTask(`use-${i}`, ['data'])));
    expect(sliceIndependentGraph(ev, 10)).toHaveLength(3);
  });

  test('the slices, fed one by one across a fifo timeout, give the priorities of the whole message; each slice is spread over the workers', () => {
    const run = (sliced: boolean) => {
      const clock = testClock();
      const s = newState({ clock });
      s.handleStimulus(dummyWorker(A), dummyWorker(B));
      const ev = mapOf(25);
      const parts = sliced ? sliceIndependentGraph(ev, 10) : [ev];
      const placed: string[] = [];
      for (const part of parts) {
        const out = s.handleStimulus(part);
        for (const w of [A, B]) for (const m of workerMsgs(out, w)) placed.push(`${(m as { key: string }).key}@${w}`);
        clock.now += 500; // far beyond the 100 ms fifo timeout
      }
      // Another submission after all slices starts the next generation.
      s.handleStimulus(dummyGraph('c', [dummyTask('later')]));
      const priorities = Object.fromEntries([...s.tasks.values()].map((ts) => [ts.key, ts.priority]));
      return { placed, priorities };
    };
    const whole = run(false);
    const sliced = run(true);
    expect(sliced.priorities).toEqual(whole.priorities);
    expect(sliced.priorities['inc-24']).toEqual([-0, 1, 24]);
    expect(sliced.priorities['later']).toEqual([-0, 2, 0]);
    // Every task placed once. Placement runs (co-assignment of neighbouring root tasks) are per
    // slice: each slice's neighbours go together, and each slice is shared by both workers.
    const keysOf = (placed: string[]) => placed.map((p) => p.split('@')[0]).sort();
    expect(keysOf(sliced.placed)).toEqual(keysOf(whole.placed));
    expect(sliced.placed).toHaveLength(25);
    const onA = (from: number, to: number) => sliced.placed.filter((p) => p.endsWith(A) && Number(p.split('@')[0]!.slice(4)) >= from && Number(p.split('@')[0]!.slice(4)) < to).length;
    expect([onA(0, 10), onA(10, 20)]).toEqual([5, 5]);
  });
});
