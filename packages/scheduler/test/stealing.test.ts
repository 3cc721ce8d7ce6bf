// Work stealing in the pure state machine: placement by data locality, balance stimuli that send
// steal-requests, and the victim's answers (the reference's transactional stealing).

import type { Instruction, SchedulerState, StealResponseEvent } from '../src/index';
import { dependencyRecords, type ComputeTaskMsg, type Key, type StealRequestMsg } from '@dd/protocol';
import { computed, dummyFinished, dummyGraph, dummyTask, dummyWorker, newState, sid_, workerMsgs } from './helpers';

const A = 'tcp://10.0.0.1:1';
const B = 'tcp://10.0.0.2:1';
const C = 'tcp://10.0.0.3:1';

function stealRequests(out: Instruction[], worker: string): Key[] {
  return workerMsgs(out, worker)
    .filter((m): m is StealRequestMsg => m.op === 'steal-request')
    .map((m) => {
      requestIds.set(m.key, m.stimulusId);
      return m.key;
    });
}

/** The stimulus id of the last steal-request seen for each key (answers echo it). */
const requestIds = new Map<Key, string>();

function answer(worker: string, key: Key, state: string | null, stimulusId = requestIds.get(key) ?? sid_('steal')): StealResponseEvent {
  return { kind: 'steal-response', worker, key, state, stimulusId };
}

/** `d` (100 bytes) on A, and `n` tasks of prefix `slow` on it; `slow` measured at `seconds` each. */
function queueOnHolder(s: SchedulerState, n: number, seconds: number): Key[] {
  s.handleStimulus(dummyWorker(A), dummyWorker(B));
  s.handleStimulus({ kind: 'update-data', client: 'c', whoHas: { d: [A] }, nbytes: { d: 100 }, stimulusId: sid_() });
  // One task of the prefix first, so its duration is known.
  s.handleStimulus(dummyGraph('c', [dummyTask('slow-100', ['d'])]));
  s.handleStimulus(dummyFinished(A, 'slow-100', 8, { startstops: [{ action: 'compute', start: 0, stop: seconds * 1000 }] }));
  const keys = Array.from({ length: n }, (_, i) => `slow-${i}`);
  const out = s.handleStimulus(dummyGraph('c', keys.map((k, i) => dummyTask(k, ['d'], { order: i }))));
  expect(computed(out)).toEqual({ [A]: keys });
  return keys;
}

describe('placement with work stealing on', () => {
  test('tasks go to the holder of their dependencies, even when another worker is idle', () => {
    const s = newState();
    queueOnHolder(s, 10, 1);
    expect(s.workers.get(B)?.processing.size).toBe(0);
  });
});

describe('balance', () => {
  test('moves the tasks the victim would run last to the idle worker, once the victim gives them up', () => {
    const s = newState();
    const keys = queueOnHolder(s, 10, 1);
    const out = s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') });
    const asked = stealRequests(out, A);
    // About half moves: 10 s queued on A; each move costs B the task plus a small transfer.
    expect(asked.length).toBeGreaterThanOrEqual(4);
    expect(asked.length).toBeLessThanOrEqual(5);
    expect(asked).toEqual(keys.slice(10 - asked.length).reverse());
    // Nothing moves before A answers; a second balance does not ask again.
    expect(s.workers.get(B)?.processing.size).toBe(0);
    expect(stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A)).toEqual([]);

    const confirmed = s.handleStimulus(...asked.map((k) => answer(A, k, 'ready')));
    expect(computed(confirmed)).toEqual({ [B]: asked });
    const moved = workerMsgs(confirmed, B)[0] as ComputeTaskMsg;
    expect(moved).toMatchObject({ op: 'compute-task', key: asked[0] });
    expect(dependencyRecords(moved.dependencies).whoHas).toEqual({ d: [A] });
    for (const k of asked) expect(s.tasks.get(k)?.processingOn?.address).toBe(B);
    expect(s.workers.get(A)?.processing.size).toBe(10 - asked.length);
    expect(s.stolen).toBe(asked.length);
    expect(s.story(asked[0] as string).some(([, start, finish]) => start === 'processing' && finish === 'processing')).toBe(true);

    // The stolen tasks finish on B as any other.
    s.handleStimulus(dummyFinished(B, asked[0] as string));
    expect(s.tasks.get(asked[0] as string)?.state).toBe('memory');
  });

  test('a task the victim already runs, or has finished, stays where it is', () => {
    const s = newState();
    queueOnHolder(s, 10, 1);
    const asked = stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A);
    const [running, done, ...rest] = asked as [Key, Key, ...Key[]];
    const o1 = s.handleStimulus(answer(A, running, 'executing'));
    expect(o1).toEqual([]);
    expect(s.tasks.get(running)?.processingOn?.address).toBe(A);
    // Finished before the answer arrived (the worker sends task-finished first): memory stays.
    s.handleStimulus(dummyFinished(A, done));
    expect(s.handleStimulus(answer(A, done, 'memory'))).toEqual([]);
    expect(s.tasks.get(done)?.state).toBe('memory');
    // Unknown there, or an answer from a worker that was not asked: nothing moves.
    const [other] = rest as [Key];
    expect(s.handleStimulus(answer(B, other, 'ready'))).toEqual([]);
    expect(s.handleStimulus(answer(A, other, null))).toEqual([]);
    expect(s.tasks.get(other)?.processingOn?.address).toBe(A);
    expect(s.stolen).toBe(0);
  });

  test('tasks measured as tiny are not worth a steal; tasks never measured are', () => {
    const s = newState();
    queueOnHolder(s, 50, 0.0001);
    expect(stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A)).toEqual([]);

    const u = newState();
    u.handleStimulus(dummyWorker(A), dummyWorker(B));
    u.handleStimulus({ kind: 'update-data', client: 'c', whoHas: { d: [A] }, nbytes: { d: 100 }, stimulusId: sid_() });
    u.handleStimulus(dummyGraph('c', Array.from({ length: 50 }, (_, i) => dummyTask(`new-${i}`, ['d'], { order: i }))));
    expect(stealRequests(u.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A).length).toBeGreaterThan(0);
  });

  test('a task its victim counts as tiny is not moved, even once its prefix measures longer', () => {
    const s = newState();
    const keys = queueOnHolder(s, 50, 0.0001);
    // Re-evaluated at the tiny average, so each queued task counts ~0.1 ms on A.
    expect(stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A)).toEqual([]);
    // The first of them takes 50 ms: the prefix now measures far above the minimum, but the
    // queue keeps its estimates until the next re-evaluation (at most every 0.5 s).
    s.handleStimulus(dummyFinished(A, keys[0]!, 8, { startstops: [{ action: 'compute', start: 0, stop: 50 }] }));
    expect(s.tasks.get(keys[1]!)!.prefix.durationAverage).toBeGreaterThan(0.0002);
    expect(stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A)).toEqual([]);
  });

  test('hard restrictions pin a task; loose ones do not', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A), dummyWorker(B));
    s.handleStimulus(
      dummyGraph('c', [
        ...Array.from({ length: 10 }, (_, i) => dummyTask(`pinned-${i}`, [], { order: i, workers: [A] })),
        ...Array.from({ length: 10 }, (_, i) => dummyTask(`loose-${i}`, [], { order: 10 + i, workers: [A], allowOtherWorkers: true })),
      ]),
    );
    expect(s.workers.get(A)?.processing.size).toBe(20);
    const asked = stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A);
    expect(asked.length).toBeGreaterThan(0);
    for (const k of asked) expect(k.startsWith('loose-')).toBe(true);
  });

  test('a victim that leaves voids its steals; a thief that leaves is replaced when the victim confirms', () => {
    const s = newState();
    queueOnHolder(s, 10, 1);
    const asked = stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A);
    expect(asked.length).toBeGreaterThan(1);
    // The thief B leaves, C joins: A's confirmation sends the task to where it fits now (back to
    // A, the holder of its input, since A gave it up: placement is by data).
    s.handleStimulus({ kind: 'remove-worker', address: B, safe: true, stimulusId: sid_() }, dummyWorker(C));
    const moved = s.handleStimulus(answer(A, asked[0] as string, 'ready'));
    expect(computed(moved)).toEqual({ [A]: [asked[0]] });
    expect(s.tasks.get(asked[0] as string)?.processingOn?.address).toBe(A);
    expect(s.stolen).toBe(0);
    // The victim A leaves (with d, the only copy: its dependents cannot run any more); a late
    // answer from it is ignored (validate mode checks the state after each stimulus).
    s.handleStimulus({ kind: 'remove-worker', address: A, safe: true, stimulusId: sid_() });
    expect(s.handleStimulus(answer(A, asked[1] as string, 'ready'))).toEqual([]);
    expect(s.tasks.get(asked[1] as string)?.processingOn ?? null).toBeNull();
  });

  test('an answer about an earlier run of the task moves nothing (released and placed again meanwhile)', () => {
    const s = newState();
    const keys = queueOnHolder(s, 10, 1);
    const asked = stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A);
    const k = asked[0] as string;
    expect(k).toBe(keys[9]);
    // The client cancels k and submits it again before A answers: A runs the new one.
    s.handleStimulus({ kind: 'cancel', client: 'c', keys: [k], force: true, stimulusId: sid_() });
    const again = s.handleStimulus(dummyGraph('c', [dummyTask(k, ['d'], { order: 99 })]));
    expect(computed(again)).toEqual({ [A]: [k] });
    // A read the request before the new compute-task: it gave up the old run and says 'ready'.
    expect(s.handleStimulus(answer(A, k, 'ready'))).toEqual([]);
    expect(s.tasks.get(k)?.processingOn?.address).toBe(A);
    expect(s.stolen).toBe(0);
  });

  test('a paused worker with queued tasks is a victim too', () => {
    const s = newState();
    queueOnHolder(s, 10, 1);
    s.handleStimulus({ kind: 'worker-paused', worker: A, stimulusId: sid_() });
    const asked = stealRequests(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') }), A);
    expect(asked.length).toBeGreaterThan(0);
    expect(computed(s.handleStimulus(answer(A, asked[0] as string, 'ready')))).toEqual({ [B]: [asked[0]] });
  });

  test('balance first re-evaluates occupancy with what the prefixes take now', () => {
    const s = newState();
    queueOnHolder(s, 10, 1);
    const a = s.workers.get(A)!;
    expect(a.occupancy).toBeCloseTo(10, 3);
    // The prefix turns out faster than its first run said: 2 ms a task.
    s.prefixes.get('slow')!.durationAverage = 0.002;
    s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') });
    expect(a.occupancy).toBeCloseTo(10 * 0.002, 4);
    expect(s.totalOccupancy).toBeCloseTo(0.02, 4);
  });

  test('without work stealing, balance does nothing', () => {
    const s = newState({ workStealing: false });
    s.handleStimulus(dummyWorker(A), dummyWorker(B));
    s.handleStimulus(dummyGraph('c', Array.from({ length: 10 }, (_, i) => dummyTask(`pinned-${i}`, [], { order: i, workers: [A], allowOtherWorkers: true }))));
    expect(s.handleStimulus({ kind: 'balance', stimulusId: sid_('balance') })).toEqual([]);
  });
});
