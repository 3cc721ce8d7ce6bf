// A large map handed to the state machine in slices (graph-slices.ts): which submissions are
// sliced, and that the slices leave the state machine where the whole message would have, with
// the same priorities and the same placement, even when a fifo timeout passes between slices.

import type { UpdateGraphEvent } from '../src/events';
import { sliceGraph } from '../src/graph-slices';

const sliceIndependentGraph = (ev: UpdateGraphEvent, size: number): UpdateGraphEvent[] => sliceGraph(ev, size).slices;
import type { Instruction } from '../src/events';
import { clientMsgs, dummyFinished, dummyGraph, dummyTask, dummyWorker, newState, testClock, workerMsgs } from './helpers';

const A = 'tcp://10.0.0.1:1';
const B = 'tcp://10.0.0.2:2';

function mapOf(n: number, prefix = 'inc'): UpdateGraphEvent {
  return dummyGraph('c', Array.from({ length: n }, (_, i) => dummyTask(`${prefix}-${i}`)));
}

describe('sliceGraph', () => {
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

  test('small submissions, tasks not needed by the wanted keys, or not in dependency order go whole', () => {
    const small = mapOf(20);
    expect(sliceIndependentGraph(small, 10)).toEqual([small]);

    // inc-24 is neither wanted nor needed by a wanted key.
    const someWanted = mapOf(25);
    someWanted.keys = someWanted.keys.slice(0, 24);
    expect(sliceIndependentGraph(someWanted, 10)).toEqual([someWanted]);

    // x-0 needs x-1, which comes later.
    const backwards = dummyGraph('c', Array.from({ length: 25 }, (_, i) => dummyTask(`x-${i}`, i < 24 ? [`x-${i + 1}`] : [])), ['x-0']);
    expect(sliceIndependentGraph(backwards, 10)).toEqual([backwards]);

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

  test('a large graph: the slices before the last are wanted by a holder, the last carries the client\'s keys', () => {
    const leaves = Array.from({ length: 24 }, (_, i) => dummyTask(`x-${i}`));
    const ev = dummyGraph('c', [...leaves, dummyTask('total', leaves.map((t) => t.key))], ['total']);
    const { slices, holder } = sliceGraph(ev, 10, 'c/slices-1');
    expect(holder).toBe('c/slices-1');
    expect(slices.map((sl) => [sl.client, sl.tasks.length, sl.keys.length, sl.continuation === true])).toEqual([
      ['c/slices-1', 10, 10, false],
      ['c/slices-1', 10, 10, true],
      ['c', 5, 1, true],
    ]);
    expect(slices[2]!.keys).toEqual(['total']);
    // A map needs no holder.
    expect(sliceGraph(mapOf(25), 10).holder).toBeUndefined();
  });

  test('a sliced graph, then its holder removed, computes what the whole message computes and keeps nothing extra', () => {
    const run = (sliced: boolean) => {
      const s = newState();
      s.handleStimulus(dummyWorker(A), dummyWorker(B));
      // Two layers: 30 leaves, 10 sums of three, one total.
      const leaves = Array.from({ length: 30 }, (_, i) => dummyTask(`leaf-${i}`));
      const sums = Array.from({ length: 10 }, (_, i) => dummyTask(`sum-${i}`, [`leaf-${3 * i}`, `leaf-${3 * i + 1}`, `leaf-${3 * i + 2}`]));
      const ev = dummyGraph('c', [...leaves, ...sums, dummyTask('total', sums.map((t) => t.key))], ['total']);
      const { slices, holder } = sliced ? sliceGraph(ev, 12, 'c/slices-1') : { slices: [ev], holder: undefined };
      expect(slices.length).toBe(sliced ? 4 : 1);
      const pending: Array<[string, string]> = [];
      const toClient: unknown[] = [];
      const take = (out: Instruction[]) => {
        for (const w of [A, B]) for (const m of workerMsgs(out, w)) if (m.op === 'compute-task') pending.push([w, m.key]);
        toClient.push(...clientMsgs(out, 'c'));
      };
      const holderEvents = holder === undefined ? [] : [{ kind: 'remove-client' as const, client: holder, stimulusId: 'rm' }];
      for (let i = 0; i < slices.length; i++) {
        take(s.handleStimulus(slices[i]!, ...(i === slices.length - 1 ? holderEvents : [])));
        // Some of the first slices' tasks finish before the rest arrives.
        if (i < slices.length - 1) take(s.handleStimulus(dummyFinished(pending[0]![0], pending.shift()![1])));
      }
      while (pending.length > 0) {
        const [w, key] = pending.shift()!;
        take(s.handleStimulus(dummyFinished(w, key)));
      }
      const priorities = Object.fromEntries([...s.tasks.values()].map((ts) => [ts.key, ts.priority]));
      const states = Object.fromEntries([...s.tasks.values()].map((ts) => [ts.key, ts.state]));
      const inMemory = [...s.tasks.values()].filter((ts) => ts.state === 'memory').map((ts) => ts.key);
      return { states, inMemory, clients: [...s.clients.keys()].sort(), toClient, priorities };
    };
    const whole = run(false);
    const sliced = run(true);
    // Only the wanted result is kept; the holder is gone; the client heard of its key once.
    expect(sliced.states).toEqual(whole.states);
    expect(sliced.inMemory).toEqual(['total']);
    expect(sliced.priorities).toEqual(whole.priorities);
    expect(sliced.clients).toEqual(whole.clients);
    expect(sliced.toClient).toEqual(whole.toClient);
    expect(sliced.toClient).toEqual([expect.objectContaining({ op: 'key-in-memory', key: 'total' })]);
  });
});
