import { dependencyRecords, type ComputeTaskMsg } from '@dd/protocol';
import { DEFER_RELEASES_ABOVE, InvalidTransitionError, SchedulerState, keyGroup, keySplit } from '../src/index';
import {
  SPEC,
  clientMsgs,
  computeKeys,
  computed,
  dummyErred,
  dummyFinished,
  dummyGraph,
  dummyTask,
  dummyWorker,
  freed,
  newState,
  sid_,
  testClock,
  workerMsgs,
} from './helpers';

const A = 'tcp://10.0.0.1:1';
const B = 'tcp://10.0.0.2:1';
const C = 'tcp://10.0.0.3:1';

function twoWorkers(s: SchedulerState, extraB: Parameters<typeof dummyWorker>[1] = {}): void {
  s.handleStimulus(dummyWorker(A, { host: 'hostA', name: 'alice' }), dummyWorker(B, { host: 'hostB', name: 'bob', ...extraB }));
}

describe('submit and dependency chains', () => {
  test('a single task goes to a worker and the client hears key-in-memory', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A), { kind: 'add-client', client: 'c1', stimulusId: sid_() });
    const out = s.handleStimulus(dummyGraph('c1', [dummyTask('inc-1')]));
    expect(out).toEqual([
      {
        type: 'send-worker',
        worker: A,
        msgs: [
          { op: 'compute-task', key: 'inc-1', spec: SPEC, priority: [-0, 1, 0], duration: expect.any(Number), stimulusId: expect.any(String) },
        ],
      },
    ]);
    expect(s.tasks.get('inc-1')?.state).toBe('processing');
    const done = s.handleStimulus(dummyFinished(A, 'inc-1', 28, { type: 'number' }));
    expect(done).toEqual([{ type: 'send-client', client: 'c1', msgs: [{ op: 'key-in-memory', key: 'inc-1', type: 'number' }] }]);
    expect(s.tasks.get('inc-1')?.state).toBe('memory');
    expect(s.workers.get(A)?.nbytes).toBe(28);
  });

  test('annotations, resources and retries of a definition travel as the reference does', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A, { resources: { GPU: 1 } }), { kind: 'add-client', client: 'c1', stimulusId: sid_() });
    const annotations = { team: 'data', attempt: 3 };
    const out = s.handleStimulus(dummyGraph('c1', [dummyTask('inc-1', [], { annotations, resources: { GPU: 1 }, retries: 2 })]));
    const msgs = out.flatMap((i) => (i.type === 'send-worker' ? i.msgs : []));
    expect(msgs).toEqual([expect.objectContaining({ op: 'compute-task', key: 'inc-1', annotations, resources: { GPU: 1 } })]);
    const ts = s.tasks.get('inc-1')!;
    expect(ts.annotations).toEqual(annotations);
    expect(ts.retries).toBe(2);
    expect(s.workers.get(A)?.usedResources).toEqual({ GPU: 1 });
  });

  test('an inline result in task-finished is forwarded in key-in-memory, not kept', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A), { kind: 'add-client', client: 'c1', stimulusId: sid_() });
    s.handleStimulus(dummyGraph('c1', [dummyTask('inc-1')]));
    const done = s.handleStimulus(dummyFinished(A, 'inc-1', 8, { type: 'number', value: 2 }));
    expect(done).toEqual([{ type: 'send-client', client: 'c1', msgs: [{ op: 'key-in-memory', key: 'inc-1', type: 'number', value: 2 }] }]);
    // A client asking later hears the key is in memory and fetches it.
    const later = s.handleStimulus({ kind: 'client-desires-keys', client: 'c2', keys: ['inc-1'], stimulusId: sid_() });
    expect(later).toEqual([{ type: 'send-client', client: 'c2', msgs: [{ op: 'key-in-memory', key: 'inc-1', type: 'number' }] }]);
  });

  test('workers given work are written to before workers only told to free keys', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus({ kind: 'add-client', client: 'c1', stimulusId: sid_() });
    s.handleStimulus(dummyGraph('c1', [dummyTask('x', [], { workers: [A] })]));
    s.handleStimulus(dummyFinished(A, 'x', 8));
    // The loop of submit, await, release: the release of x and the next task come together.
    const out = s.handleStimulus(
      { kind: 'client-releases-keys', client: 'c1', keys: ['x'], stimulusId: sid_() },
      dummyGraph('c1', [dummyTask('y', [], { workers: [B] })]),
    );
    expect(out.map((i) => (i.type === 'send-worker' ? [i.worker, i.msgs.map((m) => m.op)] : [i.client, i.msgs.map((m) => m.op)]))).toEqual([
      [B, ['compute-task']],
      [A, ['free-keys']],
    ]);
    // A worker with work and releases keeps its messages in order.
    s.handleStimulus(dummyFinished(B, 'y', 8));
    const same = s.handleStimulus(
      { kind: 'client-releases-keys', client: 'c1', keys: ['y'], stimulusId: sid_() },
      dummyGraph('c1', [dummyTask('z', [], { workers: [B] })]),
    );
    expect(same.map((i) => (i.type === 'send-worker' ? [i.worker, i.msgs.map((m) => m.op)] : []))).toEqual([[B, ['free-keys', 'compute-task']]]);
  });

  test('a chain runs one step at a time and intermediate results are released', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    const out = s.handleStimulus(dummyGraph('c1', [dummyTask('x'), dummyTask('y', ['x']), dummyTask('z', ['y'])], ['z']));
    expect(computeKeys(out)).toEqual(['x']);
    expect(s.tasks.get('y')?.state).toBe('waiting');
    const o2 = s.handleStimulus(dummyFinished(A, 'x'));
    expect(computeKeys(o2)).toEqual(['y']);
    const msg = workerMsgs(o2, A)[0] as ComputeTaskMsg;
    // x is on A itself: nbytes names it, whoHas lists no one (a worker never fetches from itself).
    expect(msg).toMatchObject({ op: 'compute-task', key: 'y' });
    expect(msg.dependencies).toEqual({ keys: ['x'], nbytes: [100], holders: [], whoHas: [[]] });
    const o3 = s.handleStimulus(dummyFinished(A, 'y'));
    // x no longer needed by anyone once y is in memory
    expect(freed(o3, A)).toEqual(['x']);
    expect(computeKeys(o3)).toEqual(['z']);
    expect(s.tasks.get('x')?.state).toBe('released');
    const o4 = s.handleStimulus(dummyFinished(A, 'z'));
    expect(freed(o4, A)).toEqual(['y']);
    expect(clientMsgs(o4, 'c1')).toEqual([{ op: 'key-in-memory', key: 'z' }]);
  });

  test('a task with many dependencies reports its result first and frees them in a release-deferred stimulus', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    const n = DEFER_RELEASES_ABOVE + 1;
    const leaves = Array.from({ length: n }, (_, i) => dummyTask(`x-${i}`));
    s.handleStimulus(dummyGraph('c1', [...leaves, dummyTask('total', leaves.map((t) => t.key))], ['total']));
    s.handleStimulus(...leaves.map((t) => dummyFinished(A, t.key)));
    // A client asks for one of them meanwhile: that one stays.
    s.handleStimulus({ kind: 'client-desires-keys', client: 'c2', keys: ['x-0'], stimulusId: sid_() });
    const done = s.handleStimulus(dummyFinished(A, 'total'));
    expect(clientMsgs(done, 'c1')).toEqual([{ op: 'key-in-memory', key: 'total' }]);
    expect(freed(done, A)).toEqual([]);
    expect(s.deferredReleaseCount).toBe(n - 1); // not x-0, which c2 wants
    expect(s.tasks.get('x-1')?.state).toBe('memory');
    const later = s.handleStimulus({ kind: 'release-deferred', stimulusId: sid_('release-deferred') });
    expect(new Set(freed(later, A))).toEqual(new Set(leaves.slice(1).map((t) => t.key)));
    expect(s.deferredReleaseCount).toBe(0);
    expect(s.tasks.get('x-1')?.state).toBe('released'); // as without deferring: total still names it
    expect(s.tasks.get('x-0')?.state).toBe('memory');
    // Nothing left: another release-deferred does nothing.
    expect(s.handleStimulus({ kind: 'release-deferred', stimulusId: sid_() })).toEqual([]);
  });

  test('a many-dependency task that errs before it runs releases its other inputs at once, as before', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    const leaves = Array.from({ length: DEFER_RELEASES_ABOVE + 1 }, (_, i) => dummyTask(`x-${i}`));
    s.handleStimulus(dummyGraph('c1', [...leaves, dummyTask('total', leaves.map((t) => t.key))], ['total']));
    s.handleStimulus(dummyFinished(A, 'x-1'));
    s.handleStimulus(dummyErred(A, 'x-0'));
    expect(s.tasks.get('total')?.state).toBe('erred');
    expect(s.deferredReleaseCount).toBe(0);
    // Nothing keeps computing for a result nobody can use, and the finished one is freed.
    expect([...s.tasks.values()].filter((t) => t.state === 'processing' || t.state === 'memory')).toEqual([]);
  });

  test(`a task with up to ${DEFER_RELEASES_ABOVE} dependencies frees them in the stimulus that finishes it`, () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    const leaves = Array.from({ length: DEFER_RELEASES_ABOVE }, (_, i) => dummyTask(`x-${i}`));
    s.handleStimulus(dummyGraph('c1', [...leaves, dummyTask('total', leaves.map((t) => t.key))], ['total']));
    s.handleStimulus(...leaves.map((t) => dummyFinished(A, t.key)));
    const done = s.handleStimulus(dummyFinished(A, 'total'));
    expect(freed(done, A)).toHaveLength(DEFER_RELEASES_ABOVE);
    expect(s.deferredReleaseCount).toBe(0);
  });

  test('a recommendation to release a task that is held and needed again is dropped', () => {
    // A retried task that nobody needs drops itself as its inputs' waiter and adds itself back
    // in the same stimulus; the fuzz test found an input released under it that way.
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c1', [dummyTask('x'), dummyTask('w'), dummyTask('y', ['x', 'w'])], ['y']));
    s.handleStimulus(dummyFinished(A, 'x'));
    expect(s.tasks.get('y')?.state).toBe('waiting');
    s.transitions(new Map([['x', 'released']]), sid_());
    expect(s.tasks.get('x')?.state).toBe('memory');
    const done = s.handleStimulus(dummyFinished(A, 'w'));
    expect(computeKeys(done)).toEqual(['y']);
    s.validateState();
  });

  test('a task waits for all its dependencies (diamond)', () => {
    const s = newState();
    twoWorkers(s);
    const out = s.handleStimulus(
      dummyGraph('c', [dummyTask('a'), dummyTask('b', ['a']), dummyTask('c', ['a']), dummyTask('d', ['b', 'c'])], ['d']),
    );
    expect(computeKeys(out)).toEqual(['a']);
    const o2 = s.handleStimulus(dummyFinished(A, 'a'));
    expect(computeKeys(o2).sort()).toEqual(['b', 'c']);
    const where = computed(o2);
    const wb = Object.keys(where).find((w) => where[w]?.includes('b')) as string;
    s.handleStimulus(dummyFinished(wb, 'b'));
    expect(s.tasks.get('d')?.state).toBe('waiting');
    const wc = Object.keys(where).find((w) => where[w]?.includes('c')) as string;
    const o3 = s.handleStimulus(dummyFinished(wc, 'c'));
    expect(computeKeys(o3)).toEqual(['d']);
    expect(s.tasks.get('a')?.state).toBe('released');
  });

  test('tasks submitted with no workers wait in no-worker and run when one joins', () => {
    const s = newState();
    const out = s.handleStimulus(dummyGraph('c', [dummyTask('t1'), dummyTask('t2', ['t1'])]));
    expect(out).toEqual([]);
    expect(s.tasks.get('t1')?.state).toBe('no-worker');
    expect(s.tasks.get('t2')?.state).toBe('waiting');
    const o2 = s.handleStimulus(dummyWorker(A));
    expect(computeKeys(o2)).toEqual(['t1']);
  });

  test('graph with a dependency on an unknown key cancels that key (and its dependents)', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    const out = s.handleStimulus(dummyGraph('c', [dummyTask('ok'), dummyTask('bad', ['ghost']), dummyTask('worse', ['bad'])]));
    expect(computeKeys(out)).toEqual(['ok']);
    const cancelled = clientMsgs(out, 'c').flatMap((m) => (m.op === 'cancelled-keys' ? m.keys : []));
    expect(cancelled.sort()).toEqual(['bad', 'worse']);
    expect(s.tasks.has('bad')).toBe(false);
  });

  test('depending on a key already in memory uses its holder', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    const w = s.tasks.get('a')?.processingOn?.address as string;
    s.handleStimulus(dummyFinished(w, 'a', 50_000_000));
    const out = s.handleStimulus(dummyGraph('c', [dummyTask('b', ['a'])], ['b']));
    expect(computed(out)).toEqual({ [w]: ['b'] });
  });
});

describe('worker choice', () => {
  test('data locality: a task goes to the worker holding more bytes of its deps', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('small'), dummyTask('big')]));
    const wSmall = s.tasks.get('small')?.processingOn?.address as string;
    const wBig = s.tasks.get('big')?.processingOn?.address as string;
    expect(wSmall).not.toBe(wBig);
    s.handleStimulus(dummyFinished(wSmall, 'small', 10), dummyFinished(wBig, 'big', 10_000_000));
    const out = s.handleStimulus(dummyGraph('c', [dummyTask('sum', ['small', 'big'])], ['sum']));
    expect(computed(out)).toEqual({ [wBig]: ['sum'] });
    const ct = dependencyRecords((workerMsgs(out, wBig)[0] as ComputeTaskMsg).dependencies);
    expect(ct.nbytes).toEqual({ small: 10, big: 10_000_000 });
    expect(ct.whoHas).toEqual({ small: [wSmall] }); // big is on wBig itself
  });

  test('without work stealing, tasks on one small scattered value spread to idle workers instead of queueing on its holder', () => {
    const s = newState({ workStealing: false });
    twoWorkers(s);
    s.handleStimulus({ kind: 'update-data', client: 'c', whoHas: { d: [A] }, nbytes: { d: 100 }, stimulusId: sid_() });
    const out = s.handleStimulus(dummyGraph('c', Array.from({ length: 100 }, (_, i) => dummyTask(`f-${i}`, ['d'], { order: i }))));
    const where = computed(out);
    expect(where[A]?.length).toBeGreaterThanOrEqual(45);
    expect(where[B]?.length).toBeGreaterThanOrEqual(40);
    // but a big dependency keeps its dependents where it is
    s.handleStimulus({ kind: 'update-data', client: 'c', whoHas: { big: [B] }, nbytes: { big: 1e9 }, stimulusId: sid_() });
    const o2 = s.handleStimulus(dummyGraph('c', Array.from({ length: 5 }, (_, i) => dummyTask(`g-${i}`, ['big'], { order: i }))));
    expect(computed(o2)).toEqual({ [B]: ['g-0', 'g-1', 'g-2', 'g-3', 'g-4'] });
  });

  test('a large map is spread across workers in proportion to threads', () => {
    const s = newState({ validate: false });
    s.handleStimulus(dummyWorker(A, { nthreads: 1 }), dummyWorker(B, { nthreads: 3 }));
    const tasks = Array.from({ length: 400 }, (_, i) => dummyTask(`inc-${i}`, [], { order: i }));
    const out = s.handleStimulus(dummyGraph('c', tasks));
    const where = computed(out);
    expect((where[A] ?? []).length + (where[B] ?? []).length).toBe(400);
    expect(where[A]?.length).toBeGreaterThanOrEqual(95);
    expect(where[A]?.length).toBeLessThanOrEqual(105);
    s.validateState();
  });

  test('equal workers get an even split and priority order is kept per worker', () => {
    const s = newState();
    twoWorkers(s);
    const out = s.handleStimulus(dummyGraph('c', Array.from({ length: 10 }, (_, i) => dummyTask(`t-${i}`, [], { order: i }))));
    const where = computed(out);
    expect(where[A]?.length).toBe(5);
    expect(where[B]?.length).toBe(5);
    expect(computeKeys(out).sort()).toHaveLength(10);
    const orderA = (where[A] ?? []).map((k) => Number(k.split('-')[1]));
    expect([...orderA].sort((x, y) => x - y)).toEqual(orderA);
  });

  test('the leaves of a reduction are placed in runs, so each pair is combined where it lies', () => {
    // As the reference's "Initial Task Placement": related tasks together, not alternating.
    const s = newState();
    twoWorkers(s);
    const leaves = Array.from({ length: 16 }, (_, i) => dummyTask(`inc-${i}`, [], { order: 2 * i }));
    const adds = Array.from({ length: 8 }, (_, i) => dummyTask(`add-${i}`, [`inc-${2 * i}`, `inc-${2 * i + 1}`], { order: 2 * i + 1 }));
    const out = s.handleStimulus(dummyGraph('c', [...leaves, ...adds], adds.map((t) => t.key)));
    const where = computed(out);
    expect(where[A]).toEqual(Array.from({ length: 8 }, (_, i) => `inc-${i}`));
    expect(where[B]).toEqual(Array.from({ length: 8 }, (_, i) => `inc-${8 + i}`));
    // B finishes its run first (it is less occupied now): the adds still go where both inputs are.
    const holder = (key: string): string => (where[A]!.includes(key) ? A : B);
    for (let i = 15; i >= 0; i--) {
      const done = s.handleStimulus(dummyFinished(holder(`inc-${i}`), `inc-${i}`, 8));
      for (const m of workerMsgs(done, A).concat(workerMsgs(done, B))) {
        if (m.op !== 'compute-task') continue;
        const sent = done.find((ins) => ins.type === 'send-worker' && ins.msgs.includes(m)) as { worker: string };
        // Both inputs are on the worker it went to: nothing to fetch, none listed in whoHas.
        const deps = dependencyRecords(m.dependencies);
        expect(Object.keys(deps.nbytes).map(holder)).toEqual([sent.worker, sent.worker]);
        expect(deps.whoHas).toEqual({});
      }
    }
  });

  test('maps of tasks measured at zero duration still split across equal workers, submission after submission', () => {
    // A prefix whose tasks all measured 0 ms adds nothing to occupancy, so every choice is a
    // tie. The tie used to rotate by the count of tasks assigned so far, and the client sends a
    // large map as update-graphs of 1 000 tasks (runs of 500 per worker): an even count every
    // time, so one worker got all of them, map after map (found in the map benchmark's passes).
    const s = newState();
    twoWorkers(s);
    const zero = { startstops: [{ action: 'compute' as const, start: 5, stop: 5 }] };
    let n = 0;
    for (let pass = 0; pass < 3; pass++) {
      const counts: Record<string, number> = { [A]: 0, [B]: 0 };
      const keys: string[] = [];
      for (let chunk = 0; chunk < 4; chunk++) {
        const tasks = Array.from({ length: 1000 }, () => dummyTask(`inc-${n++}`, [], { order: n }));
        const where = computed(s.handleStimulus(dummyGraph('c', tasks)));
        for (const w of [A, B]) counts[w] = counts[w]! + (where[w]?.length ?? 0);
        keys.push(...tasks.map((t) => t.key));
      }
      expect(counts).toEqual({ [A]: 2000, [B]: 2000 });
      s.handleStimulus(...keys.map((k) => dummyFinished(s.tasks.get(k)!.processingOn!.address, k, 8, zero)));
      expect(s.prefixes.get('inc')!.durationAverage).toBe(0);
      expect(s.totalOccupancy).toBe(0); // no rounding residue once nothing is processing
      s.handleStimulus({ kind: 'client-releases-keys', client: 'c', keys, stimulusId: sid_() });
    }
    // A worker holding tasks of zero expected cost is busy, not idle: a rounding residue in the
    // total occupancy used to make it count as idle (so it kept winning ties with a truly idle one).
    const held = Array.from({ length: 50 }, () => dummyTask(`inc-${n++}`, [], { workers: [A] }));
    s.handleStimulus(dummyGraph('c', held));
    expect(s.workers.get(A)!.processing.size).toBe(50);
    expect(s.workers.get(A)!.occupancy).toBe(0);
    expect([...s.idle].map((ws) => ws.address)).toEqual([B]);
  });

  test('a small group of tasks without dependencies still alternates between workers', () => {
    const s = newState();
    twoWorkers(s);
    const out = s.handleStimulus(dummyGraph('c', Array.from({ length: 4 }, (_, i) => dummyTask(`t-${i}`, [], { order: i }))));
    expect(computed(out)).toEqual({ [A]: ['t-0', 't-2'], [B]: ['t-1', 't-3'] });
  });

  test('runs are per submission: later single tasks of the same group go to the least busy worker', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', Array.from({ length: 16 }, (_, i) => dummyTask(`inc-${i}`, [], { order: i }))));
    const singles: Record<string, string[]> = {};
    for (let i = 16; i < 20; i++) {
      for (const [w, keys] of Object.entries(computed(s.handleStimulus(dummyGraph('c', [dummyTask(`inc-${i}`)]))))) (singles[w] ??= []).push(...keys);
    }
    expect(singles[A]).toHaveLength(2);
    expect(singles[B]).toHaveLength(2);
  });

  test('a task on a few bytes stays with their holder unless another worker is free by more than a transfer latency', () => {
    const s = newState({ transferLatencyMs: 1 });
    twoWorkers(s);
    s.handleStimulus({ kind: 'update-data', client: 'c', whoHas: { d: [A] }, nbytes: { d: 8 }, stimulusId: sid_() });
    // A has one task queued (0.5 ms, the default guess): B is freer, but by less than 1 ms.
    s.handleStimulus(dummyGraph('c', [dummyTask('busy', [], { workers: [A] })]));
    const out = s.handleStimulus(dummyGraph('c', [dummyTask('f', ['d'])]));
    expect(computed(out)).toEqual({ [A]: ['f'] });
  });

  test('hard restrictions by address, host and name', () => {
    const s = newState();
    twoWorkers(s);
    const out = s.handleStimulus(
      dummyGraph('c', [
        dummyTask('by-addr', [], { workers: [B] }),
        dummyTask('by-host', [], { workers: ['hostB'] }),
        dummyTask('by-name', [], { workers: ['bob'] }),
      ]),
    );
    expect(computed(out)).toEqual({ [B]: expect.arrayContaining(['by-addr', 'by-host', 'by-name']) });
  });

  test('hard restriction to an absent worker waits in no-worker until it joins', () => {
    const s = newState();
    twoWorkers(s);
    const out = s.handleStimulus(dummyGraph('c', [dummyTask('t', [], { workers: ['carol'] })]));
    expect(out).toEqual([]);
    expect(s.tasks.get('t')?.state).toBe('no-worker');
    expect(s.unrunnable.size).toBe(1);
    // another unrelated worker does not help
    expect(computeKeys(s.handleStimulus(dummyWorker('tcp://10.0.0.9:1', { name: 'dave' })))).toEqual([]);
    const o2 = s.handleStimulus(dummyWorker(C, { name: 'carol' }));
    expect(computed(o2)).toEqual({ [C]: ['t'] });
  });

  test('loose restrictions fall back to any worker', () => {
    const s = newState();
    twoWorkers(s);
    const out = s.handleStimulus(dummyGraph('c', [dummyTask('t', [], { workers: ['nobody'], allowOtherWorkers: true })]));
    expect(computeKeys(out)).toEqual(['t']);
  });

  test('resources: only workers declaring enough get the task; no-worker until one joins', () => {
    const s = newState();
    twoWorkers(s, { resources: { GPU: 1 } });
    const out = s.handleStimulus(
      dummyGraph('c', [dummyTask('g1', [], { resources: { GPU: 1 } }), dummyTask('g2', [], { resources: { GPU: 2 } })]),
    );
    expect(computed(out)).toEqual({ [B]: ['g1'] });
    expect(workerMsgs(out, B)[0]).toMatchObject({ resources: { GPU: 1 } });
    expect(s.workers.get(B)?.usedResources).toEqual({ GPU: 1 });
    expect(s.tasks.get('g2')?.state).toBe('no-worker');
    const o2 = s.handleStimulus(dummyWorker(C, { resources: { GPU: 4 } }));
    expect(computed(o2)).toEqual({ [C]: ['g2'] });
    s.handleStimulus(dummyFinished(B, 'g1'));
    expect(s.workers.get(B)?.usedResources).toEqual({ GPU: 0 });
  });

  test('paused workers get no new work; resuming retries no-worker tasks', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus({ kind: 'worker-paused', worker: A, stimulusId: sid_() });
    expect(s.handleStimulus(dummyGraph('c', [dummyTask('t')]))).toEqual([]);
    expect(s.tasks.get('t')?.state).toBe('no-worker');
    const out = s.handleStimulus({ kind: 'worker-resumed', worker: A, stimulusId: sid_() });
    expect(computed(out)).toEqual({ [A]: ['t'] });
  });
});

describe('priorities', () => {
  test('priority is [-userPriority, generation, order]; fifo generations', () => {
    const clock = testClock();
    const s = newState({ clock });
    s.handleStimulus(dummyGraph('c', [dummyTask('a', [], { order: 3 })], ['a'], { userPriority: 5 }));
    expect(s.tasks.get('a')?.priority).toEqual([-5, 1, 3]);
    clock.now += 50;
    s.handleStimulus(dummyGraph('c', [dummyTask('b')]));
    expect(s.tasks.get('b')?.priority).toEqual([-0, 1, 0]);
    clock.now += 150;
    s.handleStimulus(dummyGraph('c', [dummyTask('c')]));
    expect(s.tasks.get('c')?.priority).toEqual([-0, 2, 0]);
    clock.now += 50;
    s.handleStimulus(dummyGraph('c', [dummyTask('d')], ['d'], { fifoTimeoutMs: 0 }));
    expect(s.tasks.get('d')?.priority).toEqual([-0, 3, 0]);
  });

  test('ready tasks are dispatched in priority order', () => {
    const s = newState();
    s.handleStimulus(dummyGraph('c', [dummyTask('low', [], { order: 2 }), dummyTask('high', [], { order: 0 }), dummyTask('mid', [], { order: 1 })]));
    s.handleStimulus(dummyGraph('c', [dummyTask('urgent')], ['urgent'], { userPriority: 10 }));
    const out = s.handleStimulus(dummyWorker(A));
    expect(computeKeys(out)).toEqual(['urgent', 'high', 'mid', 'low']);
  });

  test('dependents that become ready go out highest priority first', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(
      dummyGraph('c', [dummyTask('root', [], { order: 0 }), dummyTask('d2', ['root'], { order: 2 }), dummyTask('d1', ['root'], { order: 1 })], ['d1', 'd2']),
    );
    expect(computeKeys(s.handleStimulus(dummyFinished(A, 'root')))).toEqual(['d1', 'd2']);
  });
});

describe('errors and retries', () => {
  test('an error reaches the wanting client and propagates to dependents with blame', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c1', [dummyTask('a'), dummyTask('b', ['a']), dummyTask('c', ['b'])], ['a', 'c']));
    s.handleStimulus(dummyGraph('c2', [], ['b']));
    const out = s.handleStimulus(dummyErred(A, 'a', 'kaput'));
    const exception = expect.objectContaining({ name: 'Error', message: 'kaput' });
    expect(clientMsgs(out, 'c1')).toEqual(
      expect.arrayContaining([
        { op: 'task-erred', key: 'a', exception },
        { op: 'task-erred', key: 'c', exception },
      ]),
    );
    expect(clientMsgs(out, 'c2')).toEqual([{ op: 'task-erred', key: 'b', exception }]);
    for (const k of ['a', 'b', 'c']) expect(s.tasks.get(k)?.state).toBe('erred');
    expect(s.tasks.get('c')?.exceptionBlame?.key).toBe('a');
    // submitting something on top of an erred key errs at once
    const o2 = s.handleStimulus(dummyGraph('c2', [dummyTask('d', ['c'])], ['d']));
    expect(clientMsgs(o2, 'c2')).toEqual([{ op: 'task-erred', key: 'd', exception }]);
  });

  test('retries: a failing task with retries left runs again', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('flaky', [], { retries: 2 })]));
    const o1 = s.handleStimulus(dummyErred(A, 'flaky'));
    expect(freed(o1, A)).toEqual(['flaky']);
    expect(computeKeys(o1)).toEqual(['flaky']);
    expect(clientMsgs(o1, 'c')).toEqual([]);
    const o2 = s.handleStimulus(dummyErred(A, 'flaky'));
    expect(computeKeys(o2)).toEqual(['flaky']);
    const o3 = s.handleStimulus(dummyErred(A, 'flaky'));
    expect(clientMsgs(o3, 'c')).toEqual([expect.objectContaining({ op: 'task-erred', key: 'flaky' })]);
    expect(s.tasks.get('flaky')?.state).toBe('erred');
  });

  test('retry stimulus reruns the erred root and its erred dependents', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a'), dummyTask('b', ['a'])], ['b']));
    s.handleStimulus(dummyErred(A, 'a'));
    expect(s.tasks.get('b')?.state).toBe('erred');
    const out = s.handleStimulus({ kind: 'retry', keys: ['b'], stimulusId: sid_() });
    expect(computeKeys(out)).toEqual(['a']);
    expect(freed(out, A)).toEqual(['a']);
    expect(s.tasks.get('b')?.state).toBe('waiting');
    const o2 = s.handleStimulus(dummyFinished(A, 'a'));
    expect(computeKeys(o2)).toEqual(['b']);
  });
});

describe('releasing, cancelling, deduplication', () => {
  test('client releases keys: data freed on workers and tasks forgotten', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('a'), dummyTask('b')]));
    const wa = s.tasks.get('a')?.processingOn?.address as string;
    const wb = s.tasks.get('b')?.processingOn?.address as string;
    s.handleStimulus(dummyFinished(wa, 'a'), dummyFinished(wb, 'b'));
    const out = s.handleStimulus({ kind: 'client-releases-keys', client: 'c', keys: ['a', 'b'], stimulusId: sid_() });
    expect(freed(out, wa)).toContain('a');
    expect(freed(out, wb)).toContain('b');
    expect(s.tasks.size).toBe(0);
    expect(s.workers.get(wa)?.hasWhat.size).toBe(0);
    expect(s.story('a').map((e) => e[2])).toEqual(['waiting', 'processing', 'memory', 'forgotten']);
  });

  test('releasing a processing task tells its worker to free it', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    const out = s.handleStimulus({ kind: 'client-releases-keys', client: 'c', keys: ['a'], stimulusId: sid_() });
    expect(out).toEqual([{ type: 'send-worker', worker: A, msgs: [{ op: 'free-keys', keys: ['a'], stimulusId: expect.any(String) }] }]);
    expect(s.workers.get(A)?.occupancy).toBe(0);
    // late task-finished for a forgotten key: the worker is told to drop it
    expect(freed(s.handleStimulus(dummyFinished(A, 'a')), A)).toEqual(['a']);
  });

  test('same key submitted by two clients is computed once and both are told', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    const o1 = s.handleStimulus(dummyGraph('c1', [dummyTask('pure')]));
    const o2 = s.handleStimulus(dummyGraph('c2', [dummyTask('pure')]));
    expect(computeKeys(o1)).toEqual(['pure']);
    expect(computeKeys(o2)).toEqual([]);
    const o3 = s.handleStimulus(dummyFinished(A, 'pure'));
    expect(clientMsgs(o3, 'c1')).toEqual([{ op: 'key-in-memory', key: 'pure' }]);
    expect(clientMsgs(o3, 'c2')).toEqual([{ op: 'key-in-memory', key: 'pure' }]);
    // one client releasing keeps the data for the other
    expect(s.handleStimulus({ kind: 'client-releases-keys', client: 'c1', keys: ['pure'], stimulusId: sid_() })).toEqual([]);
    expect(s.tasks.get('pure')?.state).toBe('memory');
    // a third submission of a finished key is answered at once
    expect(clientMsgs(s.handleStimulus(dummyGraph('c3', [dummyTask('pure')])), 'c3')).toEqual([{ op: 'key-in-memory', key: 'pure' }]);
  });

  test('client-desires-keys on an existing key reports its state; unknown key is cancelled', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c1', [dummyTask('k')]));
    s.handleStimulus(dummyFinished(A, 'k'));
    const out = s.handleStimulus({ kind: 'client-desires-keys', client: 'c2', keys: ['k', 'nope'], stimulusId: sid_() });
    expect(clientMsgs(out, 'c2')).toEqual([
      { op: 'key-in-memory', key: 'k' },
      { op: 'cancelled-keys', keys: ['nope'] },
    ]);
  });

  test('cancel releases the key and its dependents, reporting cancelled-keys', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a'), dummyTask('b', ['a'])], ['a', 'b']));
    const out = s.handleStimulus({ kind: 'cancel', client: 'c', keys: ['a'], stimulusId: sid_() });
    const cancelled = clientMsgs(out, 'c').flatMap((m) => (m.op === 'cancelled-keys' ? m.keys : []));
    expect(cancelled).toEqual(['b', 'a']);
    expect(freed(out, A)).toEqual(['a']);
    expect(s.tasks.size).toBe(0);
  });

  test('cancel without force keeps keys another client wants', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c1', [dummyTask('a')]));
    s.handleStimulus(dummyGraph('c2', [dummyTask('a')]));
    const out = s.handleStimulus({ kind: 'cancel', client: 'c1', keys: ['a'], stimulusId: sid_() });
    expect(clientMsgs(out, 'c1')).toEqual([{ op: 'cancelled-keys', keys: ['a'] }]);
    expect(clientMsgs(out, 'c2')).toEqual([]);
    expect(s.tasks.get('a')?.state).toBe('processing');
    const forced = s.handleStimulus({ kind: 'cancel', client: 'c1', keys: ['a'], force: true, stimulusId: sid_() });
    expect(clientMsgs(forced, 'c2')).toEqual([{ op: 'cancelled-keys', keys: ['a'] }]);
    expect(s.tasks.has('a')).toBe(false);
  });

  test('removing a client releases what it wanted', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    s.handleStimulus(dummyFinished(A, 'a'));
    const out = s.handleStimulus({ kind: 'remove-client', client: 'c', stimulusId: sid_() });
    expect(freed(out, A)).toEqual(['a']);
    expect(s.clients.has('c')).toBe(false);
  });

  test('fire-and-forget keys are released once finished', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    s.handleStimulus({ kind: 'client-desires-keys', client: 'fire-and-forget', keys: ['a'], stimulusId: sid_() });
    s.handleStimulus({ kind: 'client-releases-keys', client: 'c', keys: ['a'], stimulusId: sid_() });
    expect(s.tasks.get('a')?.state).toBe('processing');
    const out = s.handleStimulus(dummyFinished(A, 'a'));
    expect(freed(out, A)).toEqual(['a']);
    expect(s.tasks.has('a')).toBe(false);
  });
});

describe('scatter, lost workers, missing data', () => {
  function scatter(s: SchedulerState, client: string, whoHas: Record<string, string[]>): ReturnType<SchedulerState['handleStimulus']> {
    const nbytes = Object.fromEntries(Object.keys(whoHas).map((k) => [k, 64]));
    return s.handleStimulus({ kind: 'update-data', client, whoHas, nbytes, stimulusId: sid_('scatter') });
  }

  test('update-data registers scattered keys in memory for the client', () => {
    const s = newState();
    twoWorkers(s);
    const out = scatter(s, 'c', { 'data-1': [A], 'data-2': [A, B] });
    expect(clientMsgs(out, 'c')).toEqual([
      { op: 'key-in-memory', key: 'data-1' },
      { op: 'key-in-memory', key: 'data-2' },
    ]);
    expect(s.tasks.get('data-2')?.whoHas.size).toBe(2);
    expect(s.tasks.get('data-1')?.runSpec).toBeNull();
    // computing on scattered data runs where it is
    expect(computed(s.handleStimulus(dummyGraph('c', [dummyTask('f', ['data-1'])], ['f'])))).toEqual({ [A]: ['f'] });
  });

  test('a worker removed mid-run: processing tasks rescheduled, lost results recomputed', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('a', [], { workers: [A] }), dummyTask('b', ['a'])], ['b']));
    s.handleStimulus(dummyFinished(A, 'a'));
    expect(s.tasks.get('b')?.processingOn?.address).toBe(A);
    const out = s.handleStimulus({ kind: 'remove-worker', address: A, stimulusId: sid_() });
    // a was restricted to A: it waits in no-worker; b waits on it
    expect(s.tasks.get('a')?.state).toBe('no-worker');
    expect(s.tasks.get('b')?.state).toBe('waiting');
    expect(s.tasks.get('b')?.suspicious).toBe(1);
    // The remaining worker is told, so it drops connections to A (A may be frozen, not gone).
    expect(out).toEqual([{ type: 'send-worker', worker: B, msgs: [{ op: 'remove-worker', worker: A, stimulusId: expect.any(String) }] }]);
    const o2 = s.handleStimulus(dummyWorker(A, { name: 'alice2' }));
    expect(computeKeys(o2)).toEqual(['a']);
  });

  test('a lost key without restrictions is recomputed elsewhere and its dependent follows', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('a'), dummyTask('b', ['a'])], ['b']));
    const w = s.tasks.get('a')?.processingOn?.address as string;
    const other = w === A ? B : A;
    s.handleStimulus(dummyFinished(w, 'a'));
    const out = s.handleStimulus({ kind: 'remove-worker', address: w, stimulusId: sid_() });
    expect(computed(out)).toEqual({ [other]: ['a'] });
    expect(computeKeys(s.handleStimulus(dummyFinished(other, 'a')))).toEqual(['b']);
  });

  test('KilledWorker after allowedFailures unexpected deaths', () => {
    const s = newState();
    const ws = ['tcp://w:1', 'tcp://w:2', 'tcp://w:3', 'tcp://w:4'];
    s.handleStimulus(dummyWorker(ws[0] as string));
    s.handleStimulus(dummyGraph('c', [dummyTask('crash'), dummyTask('after', ['crash'])], ['crash', 'after']));
    s.handleStimulus(dummyWorker(ws[1] as string), dummyWorker(ws[2] as string));
    let out = s.handleStimulus({ kind: 'remove-worker', address: ws[0] as string, stimulusId: sid_() });
    expect(computeKeys(out)).toEqual(['crash']);
    out = s.handleStimulus({ kind: 'remove-worker', address: s.tasks.get('crash')?.processingOn?.address as string, stimulusId: sid_() });
    expect(computeKeys(out)).toEqual(['crash']);
    const last = s.tasks.get('crash')?.processingOn?.address as string;
    out = s.handleStimulus({ kind: 'remove-worker', address: last, stimulusId: sid_() });
    expect(s.tasks.get('crash')?.state).toBe('erred');
    const exception = expect.objectContaining({ name: 'KilledWorker', data: { task: 'crash', lastWorker: last } });
    expect(clientMsgs(out, 'c')).toEqual([
      { op: 'task-erred', key: 'crash', exception },
      { op: 'task-erred', key: 'after', exception },
    ]);
  });

  test('a clean (safe) removal does not count as suspicious', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('t', [], { workers: [A] })]));
    s.handleStimulus({ kind: 'remove-worker', address: A, safe: true, stimulusId: sid_() });
    expect(s.tasks.get('t')?.suspicious).toBe(0);
  });

  test('scattered data whose only copy is lost makes its futures lost', () => {
    const s = newState();
    twoWorkers(s);
    scatter(s, 'c', { only: [A], both: [A, B] });
    const out = s.handleStimulus({ kind: 'remove-worker', address: A, stimulusId: sid_() });
    expect(clientMsgs(out, 'c')).toEqual([{ op: 'lost-data', key: 'only' }]);
    expect(s.tasks.has('only')).toBe(false);
    expect(s.tasks.get('both')?.state).toBe('memory');
    expect(s.clients.get('c')?.wantsWhat.size).toBe(1);
  });

  test('scattered data lost while a task waits on it: the dependent is forgotten and cancelled', () => {
    const s = newState();
    twoWorkers(s);
    scatter(s, 'c', { d: [A] });
    s.handleStimulus(dummyGraph('c', [dummyTask('f', ['d'], { workers: [B] })], ['f']));
    // f processing on B; d only on A
    const out = s.handleStimulus({ kind: 'remove-worker', address: A, stimulusId: sid_() });
    expect(clientMsgs(out, 'c')).toEqual(
      expect.arrayContaining([{ op: 'lost-data', key: 'd' }, { op: 'cancelled-keys', keys: ['f'] }]),
    );
    expect(freed(out, B)).toEqual(['f']);
    expect(s.tasks.size).toBe(0);
  });

  test('missing-data corrects who_has and recomputes when no copy is left', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('a', [], { workers: [A] }), dummyTask('b', ['a'], { workers: [B] })], ['b']));
    s.handleStimulus(dummyFinished(A, 'a'));
    expect(s.tasks.get('b')?.processingOn?.address).toBe(B);
    const out = s.handleStimulus({ kind: 'missing-data', key: 'a', errantWorker: A, stimulusId: sid_() });
    expect(freed(out, B)).toEqual(['b']);
    expect(computed(out)).toEqual({ [A]: ['a'] });
    expect(s.tasks.get('b')?.state).toBe('waiting');
    const o2 = s.handleStimulus(dummyFinished(A, 'a'));
    expect(computed(o2)).toEqual({ [B]: ['b'] });
  });

  test('missing-data with another copy left only drops the replica', () => {
    const s = newState();
    twoWorkers(s);
    scatter(s, 'c', { x: [A, B] });
    expect(s.handleStimulus({ kind: 'missing-data', key: 'x', errantWorker: A, stimulusId: sid_() })).toEqual([]);
    expect([...(s.tasks.get('x')?.whoHas ?? [])].map((w) => w.address)).toEqual([B]);
  });

  test('release-worker-data and add-keys update who_has', () => {
    const s = newState();
    twoWorkers(s);
    s.handleStimulus(dummyGraph('c', [dummyTask('a', [], { workers: [A] })]));
    s.handleStimulus(dummyFinished(A, 'a'));
    s.handleStimulus({ kind: 'add-keys', worker: B, keys: ['a', 'zzz'], stimulusId: sid_() });
    expect(s.tasks.get('a')?.whoHas.size).toBe(2);
    s.handleStimulus({ kind: 'release-worker-data', worker: A, keys: ['a'], stimulusId: sid_() });
    expect([...(s.tasks.get('a')?.whoHas ?? [])].map((w) => w.address)).toEqual([B]);
    const out = s.handleStimulus({ kind: 'release-worker-data', worker: B, keys: ['a'], stimulusId: sid_() });
    // last copy gone: recomputed (restricted to A)
    expect(computed(out)).toEqual({ [A]: ['a'] });
  });

  test('a re-registering worker holding known keys adds replicas; unknown ones are freed', () => {
    const s = newState();
    twoWorkers(s);
    scatter(s, 'c', { k: [A] });
    const out = s.handleStimulus(dummyWorker(C, { nbytes: { k: 64, stale: 10 } }));
    expect(workerMsgs(out, C)).toEqual([{ op: 'free-keys', keys: ['stale'], stimulusId: expect.any(String) }]);
    expect(s.tasks.get('k')?.whoHas.size).toBe(2);
  });
});

describe('durations, occupancy, story, errors', () => {
  test('prefix duration average feeds occupancy', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('inc-aaaaaaaaaaaa'), dummyTask('inc-bbbbbbbbbbbb')]));
    expect(s.workers.get(A)?.occupancy).toBeCloseTo(0.001);
    s.handleStimulus(
      dummyFinished(A, 'inc-aaaaaaaaaaaa', 8, { startstops: [{ action: 'compute', start: 1000, stop: 1200 }] }),
    );
    expect(s.prefixes.get('inc')?.durationAverage).toBeCloseTo(0.2);
    expect(s.workers.get(A)?.occupancy).toBeCloseTo(0.2);
    expect(s.totalOccupancy).toBeCloseTo(0.2);
  });

  test('story lists transitions with stimulus ids', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    const g = dummyGraph('c', [dummyTask('a')]);
    s.handleStimulus(g);
    const st = s.story('a');
    expect(st[0]).toEqual(['a', 'released', 'waiting', { a: 'processing' }, g.stimulusId, expect.any(Number)]);
    expect(st[1]?.slice(0, 3)).toEqual(['a', 'waiting', 'processing']);
  });

  test('the transition log is bounded', () => {
    const s = newState({ transitionLogSize: 5 });
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a'), dummyTask('b'), dummyTask('c')]));
    expect(s.story('a', 'b', 'c').length).toBeLessThanOrEqual(5);
  });

  test('an impossible transition throws InvalidTransitionError with the story', () => {
    const s = newState();
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    expect(() => s.transitions(new Map([['a', 'memory']]), 'bad')).toThrow(InvalidTransitionError);
    try {
      s.transitions(new Map([['a', 'memory']]), 'bad');
    } catch (e) {
      expect((e as InvalidTransitionError).story.length).toBeGreaterThan(0);
    }
  });

  test('task-finished from an unknown worker is ignored; heartbeats update lastSeen', () => {
    const clock = testClock();
    const s = newState({ clock });
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    expect(s.handleStimulus(dummyFinished('tcp://ghost:1', 'a'))).toEqual([]);
    clock.now += 500;
    s.handleStimulus({ kind: 'worker-heartbeat', worker: A, stimulusId: sid_() });
    expect(s.workers.get(A)?.lastSeen).toBe(clock.now);
  });

  test('validateState catches corrupted state', () => {
    const s = newState();
    s.handleStimulus(dummyWorker(A));
    s.handleStimulus(dummyGraph('c', [dummyTask('a')]));
    (s.workers.get(A) as { occupancy: number }).occupancy += 1;
    expect(() => s.validateState()).toThrow(/occupancy/);
  });
});

describe('key prefixes', () => {
  test('keySplit and keyGroup follow the reference', () => {
    expect(keySplit('inc-4bd6a1f1c9c1b8f6e1d2a3b4c5d6e7f8')).toBe('inc');
    expect(keySplit('load-file-3')).toBe('load-file');
    expect(keySplit('x')).toBe('x');
    expect(keySplit('my_func-abcdef12')).toBe('my_func');
    expect(keySplit('read-csv-deadbeef')).toBe('read-csv');
    expect(keySplit('["x-abc", 0]')).toBe('x-abc');
    expect(keyGroup('["x-abcdef0123", 0]')).toBe('x-abcdef0123');
  });

  test('tuple keys: the canonical form, escapes, one element, and keys that only look like tuples', () => {
    expect(keyGroup('["x-abcdef0123",0]')).toBe('x-abcdef0123');
    expect(keySplit('["load-file-deadbeef",3]')).toBe('load-file');
    expect(keyGroup('["a\\"b",1]')).toBe('a"b'); // an escaped quote: read by JSON.parse
    expect(keyGroup('["\\u0041x",1]')).toBe('Ax');
    expect(keyGroup('["solo"]')).toBe('solo');
    expect(keyGroup('["x",{"nested":1}]')).toBe('x');
    // Not tuples: the whole key names the prefix.
    expect(keyGroup('[not json')).toBe('[not json');
    expect(keyGroup('["open",')).toBe('["open",');
    expect(keySplit('[1,2]')).toBe('[1,2]');
  });
});
