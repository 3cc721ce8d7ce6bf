// Priority generations (the reference's "Prioritizing Work", fifo_timeout): submissions within a
// fifo timeout of the start of the current generation share it; a later one starts a new
// generation, whose tasks rank after the older ones'. Driven through the pure state machine with
// an injected clock (no waiting, no wall time).

import type { SchedulerState } from '../src/index';
import { computeKeys, dummyGraph, dummyTask, dummyWorker, newState, testClock, workerMsgs, type TestClock } from './helpers';

const A = 'tcp://10.0.0.1:1';

function setup(): { s: SchedulerState; clock: TestClock } {
  const clock = testClock();
  return { s: newState({ clock }), clock };
}

const generationOf = (s: SchedulerState, key: string): number => s.tasks.get(key)!.priority![1]!;

describe('fifo timeout generations', () => {
  test('submissions within the window share a generation; one after it starts the next', () => {
    const { s, clock } = setup();
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    clock.now += 40;
    s.handleStimulus(dummyGraph('c', [dummyTask('b')]));
    clock.now += 60; // 100 ms after the generation started: still inside (the window is inclusive)
    s.handleStimulus(dummyGraph('c', [dummyTask('c')]));
    clock.now += 1; // 101 ms
    s.handleStimulus(dummyGraph('c', [dummyTask('d')]));
    expect(['a', 'b', 'c', 'd'].map((k) => generationOf(s, k))).toEqual([1, 1, 1, 2]);
  });

  test('the window runs from the start of the generation, not from the previous submission', () => {
    // A steady stream, one submission every 60 ms with the default 100 ms timeout: if each
    // submission extended the window, everything would stay in one generation forever and work
    // submitted minutes later would compete with the oldest.
    const { s, clock } = setup();
    const gens: number[] = [];
    for (let i = 0; i < 8; i++) {
      s.handleStimulus(dummyGraph('c', [dummyTask(`t${i}`)]));
      gens.push(generationOf(s, `t${i}`));
      clock.now += 60;
    }
    // t0 starts gen 1 at 0; t1 (60) joins; t2 (120 > 100) starts gen 2 at 120; t3 (180) joins;
    // t4 (240) starts gen 3; ...
    expect(gens).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });

  test('older work is preferred: an earlier generation goes first, whatever the graph order says', () => {
    const { s, clock } = setup();
    // The newer graph has the lower order values; across generations order does not matter.
    s.handleStimulus(dummyGraph('c', [dummyTask('old-1', [], { order: 5 }), dummyTask('old-2', [], { order: 6 })]));
    clock.now += 500;
    s.handleStimulus(dummyGraph('c', [dummyTask('new-1', [], { order: 0 }), dummyTask('new-2', [], { order: 1 })]));
    const out = s.handleStimulus(dummyWorker(A));
    expect(computeKeys(out)).toEqual(['old-1', 'old-2', 'new-1', 'new-2']);
    // The worker orders its queue by the priorities the messages carry.
    const prio = Object.fromEntries(workerMsgs(out, A).map((m) => [(m as { key: string }).key, (m as { priority: number[] }).priority]));
    expect(prio['old-2']).toEqual([-0, 1, 6]);
    expect(prio['new-1']).toEqual([-0, 2, 0]);
  });

  test('within one generation, graph order decides', () => {
    const { s, clock } = setup();
    s.handleStimulus(dummyGraph('c', [dummyTask('p', [], { order: 1 })]));
    clock.now += 10;
    s.handleStimulus(dummyGraph('c', [dummyTask('q', [], { order: 0 })]));
    expect(computeKeys(s.handleStimulus(dummyWorker(A)))).toEqual(['q', 'p']);
  });

  test('fifoTimeout 0 always starts a new generation, even at the same instant', () => {
    const { s } = setup();
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    s.handleStimulus(dummyGraph('c', [dummyTask('b')], ['b'], { fifoTimeoutMs: 0 }));
    expect([generationOf(s, 'a'), generationOf(s, 'b')]).toEqual([1, 2]);
    // b is lower priority than a, as in the reference's `submit(..., fifo_timeout='0ms')` example.
    expect(computeKeys(s.handleStimulus(dummyWorker(A)))).toEqual(['a', 'b']);
  });

  test('a submission with a long timeout joins the current generation (compute/persist: 60 s)', () => {
    const { s, clock } = setup();
    s.handleStimulus(dummyGraph('c', [dummyTask('x1')], ['x1'], { fifoTimeoutMs: 60_000 }));
    clock.now += 59_000; // "wait a while" less than a minute
    s.handleStimulus(dummyGraph('c', [dummyTask('x2')], ['x2'], { fifoTimeoutMs: 60_000 }));
    clock.now += 2_000; // 61 s after the generation started
    s.handleStimulus(dummyGraph('c', [dummyTask('x3')], ['x3'], { fifoTimeoutMs: 60_000 }));
    clock.now += 60_000;
    // "x.persist(fifo_timeout='10 minutes') # has the same priority"
    s.handleStimulus(dummyGraph('c', [dummyTask('x4')], ['x4'], { fifoTimeoutMs: 600_000 }));
    expect(['x1', 'x2', 'x3', 'x4'].map((k) => generationOf(s, k))).toEqual([1, 1, 2, 2]);
  });

  test('each submission is judged by its own timeout; the default comes from the state options', () => {
    const clock = testClock();
    const s = newState({ clock, fifoTimeoutMs: 1_000 });
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    clock.now += 500;
    s.handleStimulus(dummyGraph('c', [dummyTask('b')])); // default 1 s: same generation
    s.handleStimulus(dummyGraph('c', [dummyTask('c')], ['c'], { fifoTimeoutMs: 100 })); // 500 > 100: new
    expect(['a', 'b', 'c'].map((k) => generationOf(s, k))).toEqual([1, 1, 2]);
  });

  test('user priority outranks generations', () => {
    const { s, clock } = setup();
    s.handleStimulus(dummyGraph('c', [dummyTask('early')]));
    clock.now += 1_000;
    s.handleStimulus(dummyGraph('c', [dummyTask('late-urgent')], ['late-urgent'], { userPriority: 1 }));
    s.handleStimulus(dummyGraph('c', [dummyTask('late-low')], ['late-low'], { userPriority: -1 }));
    expect(computeKeys(s.handleStimulus(dummyWorker(A)))).toEqual(['late-urgent', 'early', 'late-low']);
  });

  test('a task resubmitted later keeps the priority it got first', () => {
    const { s, clock } = setup();
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    clock.now += 1_000;
    s.handleStimulus(dummyGraph('c2', [dummyTask('a'), dummyTask('b')]));
    expect([generationOf(s, 'a'), generationOf(s, 'b')]).toEqual([1, 2]);
  });
});
