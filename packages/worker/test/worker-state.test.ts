import {
  InvalidTransitionError,
  MemoryStore,
  WorkerState,
  type ComputeTaskEvent,
  type Instruction,
  type WorkerEvent,
} from '@dd/worker';
import { taskDependencies } from '@dd/protocol';

const SELF = 'tcp://10.0.0.1:1000';
const A = 'tcp://10.0.0.2:2000';
const B = 'tcp://10.0.0.3:3000';
const C = 'tcp://10.0.0.4:4000';
const D = 'tcp://10.0.0.5:5000';
const SPEC = { language: 'js', data: new Uint8Array([1, 2, 3]) };

let sid = 0;
function ws(opts: Partial<ConstructorParameters<typeof WorkerState>[0]> = {}): WorkerState {
  return new WorkerState({ address: SELF, nthreads: 1, validate: true, now: () => 0, ...opts });
}
/**
 * A compute-task event; dependencies may be given as the reference's records (whoHas, nbytes). A
 * dependency without a size gets 1024, the worker's default data size.
 */
function compute(key: string, extra: Partial<ComputeTaskEvent> & { whoHas?: Record<string, string[]>; nbytes?: Record<string, number> } = {}): ComputeTaskEvent {
  const { whoHas, nbytes, ...rest } = extra;
  const ev: ComputeTaskEvent = { type: 'compute-task', key, spec: SPEC, priority: [0, 0, 0], stimulusId: `s${++sid}`, ...rest };
  if (whoHas !== undefined || nbytes !== undefined) ev.dependencies = taskDependencies(whoHas ?? {}, nbytes ?? {}, 1024);
  return ev;
}
function ok(key: string, value: unknown = 1, nbytes = 8): WorkerEvent {
  return { type: 'execute-success', key, value, nbytes, start: 1, stop: 2, stimulusId: `s${++sid}` };
}
const stim = { stimulusId: 'x' };

/** Instructions without stimulus ids, for compact assertions. */
function strip(instrs: Instruction[]): unknown[] {
  return instrs.map((i) => {
    if (i.type === 'send-to-scheduler') {
      const { stimulusId: _s, startstops: _ss, ...rest } = i.msg as unknown as Record<string, unknown>;
      return { send: rest };
    }
    const { stimulusId: _s, ...rest } = i as unknown as Record<string, unknown>;
    return rest;
  });
}

describe('WorkerState: extra execute slots (executor queue depth)', () => {
  const slow = (key: string): WorkerEvent => ({ type: 'execute-success', key, value: 1, nbytes: 8, start: 0, stop: 50, stimulusId: `s${++sid}` });
  const executes = (instrs: Instruction[]) => instrs.filter((i) => i.type === 'execute').map((i) => (i as { key: string }).key);

  test('tasks of a prefix measured tiny fill the extra slots; unknown or slow ones wait for a thread', () => {
    const s = ws({ nthreads: 1, executeSlots: 3 });
    // Unknown duration: one at a time.
    expect(executes(s.handleStimulus(compute('inc-1'), compute('inc-2'), compute('inc-3'), compute('inc-4')))).toEqual(['inc-1']);
    // inc-1 took 1 ms: inc is tiny, so up to 3 go to the executor.
    expect(executes(s.handleStimulus(ok('inc-1')))).toEqual(['inc-4', 'inc-3', 'inc-2']);
    expect(s.executing.size).toBe(3);
    // A slow prefix never queues, and nothing queues behind it.
    s.handleStimulus(ok('inc-4'), ok('inc-3'), ok('inc-2'));
    expect(executes(s.handleStimulus(compute('sleep-1'), compute('sleep-2')))).toEqual(['sleep-1']);
    expect(executes(s.handleStimulus(slow('sleep-1')))).toEqual(['sleep-2']);
    expect(executes(s.handleStimulus(compute('inc-5')))).toEqual([]);
    expect(executes(s.handleStimulus(ok('sleep-2')))).toEqual(['inc-5']);
  });

  test('tasks with tuple keys share their name\'s prefix, so a measured one lets the rest queue', () => {
    // Keys of graphs are canonical tuples (["g", 0, 5]); the prefix was cut at the last '-', so
    // each such key was a prefix of its own: never measured, never queued behind a running task
    // (an executor thread idled between every two 1 ms tasks of a layered graph), and one map
    // entry per task ever run.
    const s = ws({ nthreads: 1, executeSlots: 4 });
    const keys = Array.from({ length: 6 }, (_, i) => JSON.stringify(['g', 0, i]));
    const first = executes(s.handleStimulus(...keys.map((k) => compute(k))));
    expect(first).toHaveLength(1);
    expect(executes(s.handleStimulus(ok(first[0]!)))).toHaveLength(4);
    // The same for hashed names and names with dashes: one prefix per name, as the scheduler's.
    const t = ws({ nthreads: 1, executeSlots: 4 });
    const named = Array.from({ length: 6 }, (_, i) => JSON.stringify(['load-file-1f2e3d4c5b6a79881f2e3d4c5b6a7988', i]));
    const run = executes(t.handleStimulus(...named.map((k) => compute(k))));
    expect(executes(t.handleStimulus(ok(run[0]!)))).toHaveLength(4);
  });

  test('queued tiny tasks together stay within the queued-work budget (8 ms)', () => {
    const s = ws({ nthreads: 1, executeSlots: 16 });
    const took = (key: string, ms: number): WorkerEvent => ({ type: 'execute-success', key, value: 1, nbytes: 8, start: 0, stop: ms, stimulusId: `s${++sid}` });
    const keys = Array.from({ length: 20 }, (_, i) => `f-${i}`);
    const first = executes(s.handleStimulus(...keys.map((k) => compute(k))));
    expect(first).toHaveLength(1);
    // f measured at 2 ms: tiny, but only 4 of them (8 ms) go to the executor at once.
    expect(executes(s.handleStimulus(took(first[0]!, 2)))).toHaveLength(4);
    expect(s.executing.size).toBe(4);
  });

  test('queued tiny tasks on large values hold at most 32 MiB of dependencies in the executor', () => {
    const MiB = 2 ** 20;
    const s = ws({ nthreads: 1, executeSlots: 64 });
    const keys = Array.from({ length: 10 }, (_, i) => i);
    // Ten 8 MiB values in memory here.
    for (const i of keys) {
      s.handleStimulus(compute(`make-${i}`));
      s.handleStimulus(ok(`make-${i}`, i, 8 * MiB));
    }
    const checks = keys.map((i) => compute(`check-${i}`, { whoHas: { [`make-${i}`]: [] }, nbytes: { [`make-${i}`]: 8 * MiB } }));
    expect(executes(s.handleStimulus(...checks))).toHaveLength(1);
    // check measured tiny: without the byte bound all nine left would queue at once.
    const first = [...s.executing][0]!.key;
    expect(executes(s.handleStimulus(ok(first)))).toHaveLength(4);
    expect(s.executing.size).toBe(4);
  });

  test('a job started with an unknown duration keeps the queue closed until it ends', () => {
    const s = ws({ nthreads: 2, executeSlots: 8 });
    expect(executes(s.handleStimulus(compute('f-1'), compute('f-2'), compute('f-3')))).toEqual(['f-1', 'f-2']);
    // f-1 measured tiny: a thread is free, so f-3 runs; but f-2, of unknown length when it
    // started, may still be long, so nothing queues behind the busy threads.
    expect(executes(s.handleStimulus(ok('f-1')))).toEqual(['f-3']);
    expect(executes(s.handleStimulus(compute('f-4'), compute('f-5')))).toEqual([]);
    expect(executes(s.handleStimulus(ok('f-2')))).toEqual(['f-5', 'f-4']);
    expect(s.executing.size).toBe(3);
  });
});

describe('WorkerState: computing', () => {
  test('a task without dependencies executes, then reports task-finished', () => {
    const s = ws();
    expect(strip(s.handleStimulus(compute('x')))).toEqual([{ type: 'execute', key: 'x' }]);
    expect(s.tasks.get('x')?.state).toBe('executing');
    expect(strip(s.handleStimulus(ok('x', 42, 8)))).toEqual([
      { send: { op: 'task-finished', key: 'x', nbytes: 8, type: 'number', value: 42 } },
    ]);
    expect(s.tasks.get('x')?.state).toBe('memory');
    expect(s.data.get('x')).toBe(42);
  });

  test('task-finished carries small primitive results inline, nothing else', () => {
    const s = ws();
    const finished = (key: string, value: unknown) => {
      s.handleStimulus(compute(key));
      return (strip(s.handleStimulus(ok(key, value)))[0] as { send: Record<string, unknown> }).send;
    };
    expect(finished('a', 'short')['value']).toBe('short');
    expect(finished('b', null)['value']).toBeNull();
    expect(finished('c', false)['value']).toBe(false);
    expect('value' in finished('d', 'x'.repeat(257))).toBe(false);
    expect('value' in finished('e', { a: 1 })).toBe(false);
    expect('value' in finished('f', Buffer.from('ab'))).toBe(false);
  });

  test('a task whose dependency is local waits for it, then runs', () => {
    const s = ws();
    s.handleStimulus(compute('x'));
    expect(strip(s.handleStimulus(compute('y', { whoHas: { x: [] }, nbytes: { x: 8 } })))).toEqual([]);
    expect(s.tasks.get('y')?.state).toBe('waiting');
    expect(strip(s.handleStimulus(ok('x')))).toEqual([
      { send: { op: 'task-finished', key: 'x', nbytes: 8, type: 'number', value: 1 } },
      { type: 'execute', key: 'y' },
    ]);
  });

  test('dependencies already in memory: straight to execute', () => {
    const s = ws();
    s.handleStimulus({ type: 'update-data', data: { a: 1 }, ...stim });
    expect(strip(s.handleStimulus(compute('y', { whoHas: { a: [A] }, nbytes: { a: 8 } })))).toEqual([
      { type: 'execute', key: 'y' },
    ]);
  });

  test('at most nthreads execute at once', () => {
    const s = ws({ nthreads: 2 });
    const out = s.handleStimulus(compute('a'), compute('b'), compute('c'));
    expect(strip(out)).toEqual([
      { type: 'execute', key: 'a' },
      { type: 'execute', key: 'b' },
    ]);
    expect(s.tasks.get('c')?.state).toBe('ready');
    expect(strip(s.handleStimulus(ok('a'))).slice(1)).toEqual([{ type: 'execute', key: 'c' }]);
  });

  test('ready tasks run by priority; ties last-in-first-out', () => {
    const s = ws();
    s.handleStimulus(compute('busy'));
    s.handleStimulus(
      compute('low', { priority: [0, 1, 5] }),
      compute('high', { priority: [-1, 9, 9] }),
      compute('mid1', { priority: [0, 1, 2] }),
      compute('mid2', { priority: [0, 1, 2] }),
    );
    const order: string[] = [];
    let next = 'busy';
    for (let i = 0; i < 4; i++) {
      const out = s.handleStimulus(ok(next));
      const ex = out.find((o) => o.type === 'execute');
      if (!ex || ex.type !== 'execute') throw new Error('no execute');
      order.push(ex.key);
      next = ex.key;
    }
    expect(order).toEqual(['high', 'mid2', 'mid1', 'low']);
  });

  test('a task that throws reports task-erred with the exception', () => {
    const s = ws();
    s.handleStimulus(compute('x'));
    const exception = { name: 'TypeError', message: 'boom', stack: 'TypeError: boom\n    at remote' };
    const out = s.handleStimulus({ type: 'execute-failure', key: 'x', exception, start: 1, stop: 2, ...stim });
    expect(out).toEqual([
      {
        type: 'send-to-scheduler',
        msg: { op: 'task-erred', key: 'x', exception, startstops: [{ action: 'compute', start: 1, stop: 2 }], stimulusId: 'x' },
      },
    ]);
    expect(s.tasks.get('x')?.state).toBe('error');
    // a retry from the scheduler runs it again
    expect(strip(s.handleStimulus(compute('x')))).toEqual([{ type: 'execute', key: 'x' }]);
  });

  test('compute-task for a key already in memory re-sends task-finished', () => {
    const s = ws();
    s.handleStimulus(compute('x'));
    s.handleStimulus(ok('x'));
    expect(strip(s.handleStimulus(compute('x')))).toEqual([
      { send: { op: 'task-finished', key: 'x', nbytes: 8, type: 'number' } },
    ]);
  });
});

describe('WorkerState: resources', () => {
  test('a task needing {GPU:1} waits in constrained until a GPU is free', () => {
    const s = ws({ nthreads: 4, resources: { GPU: 1 } });
    const out = s.handleStimulus(
      compute('g1', { resources: { GPU: 1 } }),
      compute('g2', { resources: { GPU: 1 } }),
      compute('cpu'),
    );
    expect(strip(out)).toEqual([
      { type: 'execute', key: 'g1' },
      { type: 'execute', key: 'cpu' },
    ]);
    expect(s.tasks.get('g2')?.state).toBe('constrained');
    expect(s.availableResources).toEqual({ GPU: 0 });
    expect(strip(s.handleStimulus(ok('g1'))).slice(1)).toEqual([{ type: 'execute', key: 'g2' }]);
    s.handleStimulus(ok('g2'));
    expect(s.availableResources).toEqual({ GPU: 1 });
  });
});

describe('WorkerState: fetching dependencies', () => {
  test('dependencies are fetched from peers, several keys per request to the same peer', () => {
    const s = ws();
    const out = s.handleStimulus(
      compute('z', { whoHas: { a: [A], b: [A], c: [B] }, nbytes: { a: 10, b: 20, c: 30 } }),
    );
    expect(strip(out)).toEqual([
      { type: 'gather-dep', worker: A, keys: ['a', 'b'], totalNbytes: 30 },
      { type: 'gather-dep', worker: B, keys: ['c'], totalNbytes: 30 },
    ]);
    expect(s.bytesInFlight).toBe(60);
    expect(strip(s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { a: 1, b: 2 }, ...stim }))).toEqual([
      { send: { op: 'add-keys', keys: ['a', 'b'], nbytes: { a: 8, b: 8 } } },
    ]);
    expect(s.tasks.get('z')?.state).toBe('waiting');
    expect(strip(s.handleStimulus({ type: 'gather-dep-success', worker: B, data: { c: 3 }, ...stim }))).toEqual([
      { type: 'execute', key: 'z' },
      { send: { op: 'add-keys', keys: ['c'], nbytes: { c: 8 } } },
    ]);
    expect(s.bytesInFlight).toBe(0);
  });

  test('a busy peer: back off, retry, then fetch', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A] }, nbytes: { a: 10 } }));
    expect(strip(s.handleStimulus({ type: 'gather-dep-busy', worker: A, ...stim }))).toEqual([
      { type: 'retry-busy-worker-later', worker: A },
    ]);
    expect(s.tasks.get('a')?.state).toBe('fetch');
    expect(strip(s.handleStimulus({ type: 'retry-busy-worker', worker: A, ...stim }))).toEqual([
      { type: 'gather-dep', worker: A, keys: ['a'], totalNbytes: 10 },
    ]);
  });

  test('a busy peer: another holder is tried meanwhile', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A, B] }, nbytes: { a: 10 } }));
    expect(strip(s.handleStimulus({ type: 'gather-dep-busy', worker: A, ...stim }))).toEqual([
      { type: 'retry-busy-worker-later', worker: A },
      { type: 'gather-dep', worker: B, keys: ['a'], totalNbytes: 10 },
    ]);
  });

  test('peer gone -> other holder -> none left: missing-data', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A, B] }, nbytes: { a: 10 } }));
    expect(strip(s.handleStimulus({ type: 'gather-dep-network-failure', worker: A, ...stim }))).toEqual([
      { type: 'gather-dep', worker: B, keys: ['a'], totalNbytes: 10 },
    ]);
    expect(strip(s.handleStimulus({ type: 'gather-dep-network-failure', worker: B, ...stim }))).toEqual([
      { send: { op: 'missing-data', key: 'a', errantWorker: B } },
    ]);
    expect(s.tasks.get('a')?.state).toBe('missing');
    // the scheduler sends the task again with a new holder
    expect(strip(s.handleStimulus(compute('z', { whoHas: { a: [C] }, nbytes: { a: 10 } })))).toEqual([
      { type: 'gather-dep', worker: C, keys: ['a'], totalNbytes: 10 },
    ]);
  });

  test('remove-worker: holders it was are forgotten (no missing-data: the scheduler knows); a transfer in flight from it ends as a network failure', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A], b: [B, C] }, nbytes: { a: 10, b: 10 } }));
    expect(s.tasks.get('a')?.state).toBe('flight');
    // B holds b with C: the gather from B is in flight; A is removed while its transfer runs.
    expect(strip(s.handleStimulus({ type: 'remove-worker', worker: A, ...stim }))).toEqual([]);
    expect(s.tasks.get('a')?.whoHas.size).toBe(0);
    expect(strip(s.handleStimulus({ type: 'gather-dep-network-failure', worker: A, ...stim }))).toEqual([]);
    expect(s.tasks.get('a')?.state).toBe('missing');
    // A removed peer that held only copies with other holders: those are fetched from the others.
    expect(strip(s.handleStimulus({ type: 'remove-worker', worker: B, ...stim }))).toEqual([]);
    expect(strip(s.handleStimulus({ type: 'gather-dep-network-failure', worker: B, ...stim }))).toEqual([
      { type: 'gather-dep', worker: C, keys: ['b'], totalNbytes: 10 },
    ]);
    // The scheduler sends the task again once a has been recomputed elsewhere.
    expect(strip(s.handleStimulus(compute('z', { whoHas: { a: [D] }, nbytes: { a: 10 } })))).toEqual([
      { type: 'gather-dep', worker: D, keys: ['a'], totalNbytes: 10 },
    ]);
  });

  test('a peer that answers without the key: missing-data for it, next holder', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A, B] }, nbytes: { a: 10 } }));
    expect(strip(s.handleStimulus({ type: 'gather-dep-success', worker: A, data: {}, ...stim }))).toEqual([
      { send: { op: 'missing-data', key: 'a', errantWorker: A } },
      { type: 'gather-dep', worker: B, keys: ['a'], totalNbytes: 10 },
    ]);
  });

  test('bytes in flight are bounded, but one request always goes', () => {
    const s = ws({ transferIncomingBytesLimit: 100, transferMessageBytesLimit: 100 });
    const out = s.handleStimulus(
      compute('z', { whoHas: { big: [A], b: [B], c: [C] }, nbytes: { big: 500, b: 60, c: 60 } }, ),
    );
    // 'big' alone exceeds the limit but nothing is in flight: it goes; the rest wait.
    expect(strip(out)).toEqual([{ type: 'gather-dep', worker: A, keys: ['big'], totalNbytes: 500 }]);
    expect(strip(s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { big: 1 }, nbytes: { big: 500 }, ...stim }))).toEqual([
      { type: 'gather-dep', worker: B, keys: ['b'], totalNbytes: 60 },
      { send: { op: 'add-keys', keys: ['big'], nbytes: { big: 500 } } },
    ]);
    expect(s.tasks.get('c')?.state).toBe('fetch');
  });

  test('per-request byte budget splits keys of one peer', () => {
    const s = ws({ transferMessageBytesLimit: 25 });
    const out = s.handleStimulus(compute('z', { whoHas: { a: [A], b: [A], c: [A] }, nbytes: { a: 10, b: 10, c: 10 } }));
    expect(strip(out)).toEqual([{ type: 'gather-dep', worker: A, keys: ['a', 'b'], totalNbytes: 20 }]);
  });

  test('concurrent incoming transfers are bounded by peer count', () => {
    const s = ws({ transferIncomingCountLimit: 2 });
    const out = s.handleStimulus(compute('z', { whoHas: { a: [A], b: [B], c: [C] }, nbytes: { a: 1, b: 1, c: 1 } }));
    expect(out.filter((i) => i.type === 'gather-dep')).toHaveLength(2);
    expect(s.inFlightWorkers.size).toBe(2);
  });

  test('a dependency is fetched once for several dependents', () => {
    const s = ws({ nthreads: 2 });
    const out = s.handleStimulus(
      compute('y1', { whoHas: { a: [A] }, nbytes: { a: 1 } }),
      compute('y2', { whoHas: { a: [A] }, nbytes: { a: 1 } }),
    );
    expect(strip(out)).toEqual([{ type: 'gather-dep', worker: A, keys: ['a'], totalNbytes: 1 }]);
    expect(strip(s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { a: 5 }, ...stim }))).toEqual([
      { type: 'execute', key: 'y2' },
      { type: 'execute', key: 'y1' },
      { send: { op: 'add-keys', keys: ['a'], nbytes: { a: 8 } } },
    ]);
  });

  test('the transfer of a fetched dependency is reported once, with the first dependent that finishes', () => {
    const s = ws({ nthreads: 2 });
    s.handleStimulus(
      compute('y1', { whoHas: { a: [A] }, nbytes: { a: 1 } }),
      compute('y2', { whoHas: { a: [A] }, nbytes: { a: 1 } }),
    );
    s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { a: 5 }, start: 10, stop: 12, ...stim });
    const finished = (out: Instruction[]) =>
      out.flatMap((i) => (i.type === 'send-to-scheduler' && i.msg.op === 'task-finished' ? [i.msg.startstops] : []));
    expect(finished(s.handleStimulus(ok('y2')))).toEqual([[
      { action: 'transfer', start: 10, stop: 12, source: A },
      { action: 'compute', start: 1, stop: 2 },
    ]]);
    expect(finished(s.handleStimulus(ok('y1')))).toEqual([[{ action: 'compute', start: 1, stop: 2 }]]);
  });

  test('dependencies fetched in one gather are one transfer in the dependent\'s report', () => {
    const s = ws();
    const keys = Array.from({ length: 50 }, (_, i) => `d-${i}`);
    s.handleStimulus(compute('total', { whoHas: Object.fromEntries(keys.map((k) => [k, [A]])), nbytes: Object.fromEntries(keys.map((k) => [k, 1])) }));
    s.handleStimulus({ type: 'gather-dep-success', worker: A, data: Object.fromEntries(keys.map((k) => [k, 1])), start: 10, stop: 12, ...stim });
    const out = s.handleStimulus(ok('total'));
    const msg = out.find((i) => i.type === 'send-to-scheduler' && i.msg.op === 'task-finished');
    expect(msg?.type === 'send-to-scheduler' && msg.msg.op === 'task-finished' && msg.msg.startstops).toEqual([
      { action: 'transfer', start: 10, stop: 12, source: A },
      { action: 'compute', start: 1, stop: 2 },
    ]);
  });

  test('disk activity of the data store is reported with the next task that finishes', () => {
    const disk = [{ action: 'disk-write' as const, start: 3, stop: 4 }];
    const data = new MemoryStore();
    const s = ws({ data: Object.assign(data, { takeDiskActivity: () => disk.splice(0) }) });
    s.handleStimulus(compute('x'));
    const out = s.handleStimulus(ok('x'));
    const finished = out.find((i) => i.type === 'send-to-scheduler' && i.msg.op === 'task-finished');
    expect(finished?.type === 'send-to-scheduler' && finished.msg.op === 'task-finished' && finished.msg.startstops).toEqual([
      { action: 'compute', start: 1, stop: 2 },
      { action: 'disk-write', start: 3, stop: 4 },
    ]);
  });

  test('acquire-replicas fetches without a dependent and keeps the data', () => {
    const s = ws();
    expect(strip(s.handleStimulus({ type: 'acquire-replicas', whoHas: { r: [A] }, nbytes: { r: 5 }, ...stim }))).toEqual([
      { type: 'gather-dep', worker: A, keys: ['r'], totalNbytes: 5 },
    ]);
    s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { r: 'v' }, ...stim });
    expect(s.tasks.get('r')?.state).toBe('memory');
  });

  test('a gather failure errs the dependent with the same exception', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A] }, nbytes: { a: 1 } }));
    const exception = { name: 'DeserializationError', message: 'bad bytes' };
    const out = s.handleStimulus({ type: 'gather-dep-failure', worker: A, exception, ...stim });
    expect(strip(out)).toEqual([{ send: { op: 'task-erred', key: 'z', exception } }]);
  });
});

describe('WorkerState: steal requests', () => {
  const steal = (key: string): WorkerEvent => ({ type: 'steal-request', key, stimulusId: `s${++sid}` });

  test('a task queued to run is given up, and the answer says it was ready', () => {
    const s = ws();
    s.handleStimulus(compute('x'), compute('y'));
    expect(s.tasks.get('y')?.state).toBe('ready');
    expect(strip(s.handleStimulus(steal('y')))).toEqual([{ send: { op: 'steal-response', key: 'y', state: 'ready' } }]);
    expect(s.tasks.has('y')).toBe(false);
    // x, running, is not given up; when it ends nothing else runs here.
    expect(strip(s.handleStimulus(steal('x')))).toEqual([{ send: { op: 'steal-response', key: 'x', state: 'executing' } }]);
    expect(s.tasks.get('x')?.state).toBe('executing');
    expect(strip(s.handleStimulus(ok('x')))).toEqual([{ send: { op: 'task-finished', key: 'x', nbytes: 8, type: 'number', value: 1 } }]);
  });

  test('a task waiting for its dependencies is given up and the transfers it alone needed are dropped', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A] }, nbytes: { a: 1 } }));
    expect(strip(s.handleStimulus(steal('z')))).toEqual([{ send: { op: 'steal-response', key: 'z', state: 'waiting' } }]);
    expect(s.tasks.has('z')).toBe(false);
    expect(s.tasks.get('a')?.state).toBe('cancelled');
  });

  test('a finished task stays in memory; an unknown key is answered with null', () => {
    const s = ws();
    s.handleStimulus(compute('x'), ok('x'));
    expect(strip(s.handleStimulus(steal('x')))).toEqual([{ send: { op: 'steal-response', key: 'x', state: 'memory' } }]);
    expect(s.data.has('x')).toBe(true);
    expect(strip(s.handleStimulus(steal('nope')))).toEqual([{ send: { op: 'steal-response', key: 'nope', state: null } }]);
  });
});

describe('WorkerState: releasing', () => {
  test('free-keys releases data and forgets the task', () => {
    const s = ws();
    s.handleStimulus(compute('x'), ok('x'));
    expect(s.handleStimulus({ type: 'free-keys', keys: ['x'], ...stim })).toEqual([]);
    expect(s.tasks.has('x')).toBe(false);
    expect(s.data.has('x')).toBe(false);
  });

  test('freeing a waiting task releases its pure dependencies, even in flight', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A], b: [B] }, nbytes: { a: 1, b: 1 } }));
    s.handleStimulus({ type: 'free-keys', keys: ['z'], ...stim });
    expect(s.tasks.has('z')).toBe(false);
    expect(s.tasks.get('a')?.state).toBe('cancelled');
    // the transfer ends: data dropped, task forgotten
    expect(s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { a: 1 }, ...stim })).toEqual([]);
    expect(s.tasks.has('a')).toBe(false);
    expect(s.data.has('a')).toBe(false);
  });

  test('a task freed while executing is cancelled; its result is dropped', () => {
    const s = ws();
    s.handleStimulus(compute('x'), compute('y'));
    s.handleStimulus({ type: 'free-keys', keys: ['x'], ...stim });
    expect(s.tasks.get('x')?.state).toBe('cancelled');
    expect(s.tasks.get('y')?.state).toBe('ready'); // the thread is still busy with x
    expect(strip(s.handleStimulus(ok('x')))).toEqual([{ type: 'execute', key: 'y' }]);
    expect(s.tasks.has('x')).toBe(false);
  });

  test('cancelled, then asked again while still executing: resumes, no second execution', () => {
    const s = ws();
    s.handleStimulus(compute('x'));
    s.handleStimulus({ type: 'free-keys', keys: ['x'], ...stim });
    expect(s.handleStimulus(compute('x'))).toEqual([]);
    expect(s.tasks.get('x')?.state).toBe('executing');
    expect(strip(s.handleStimulus(ok('x')))).toEqual([{ send: { op: 'task-finished', key: 'x', nbytes: 8, type: 'number', value: 1 } }]);
  });

  test('a dependency in flight asked to be computed: used if the transfer succeeds', () => {
    const s = ws();
    s.handleStimulus(compute('z', { whoHas: { a: [A] }, nbytes: { a: 1 } }));
    s.handleStimulus(compute('a'));
    expect(s.tasks.get('a')?.state).toBe('resumed');
    expect(strip(s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { a: 1 }, ...stim }))).toEqual([
      { send: { op: 'task-finished', key: 'a', nbytes: 8, type: 'number' } },
      { type: 'execute', key: 'z' },
    ]);
  });

  test('remove-replicas drops unneeded data and tells the scheduler', () => {
    const s = ws();
    s.handleStimulus({ type: 'acquire-replicas', whoHas: { r: [A] }, nbytes: { r: 5 }, ...stim });
    s.handleStimulus({ type: 'gather-dep-success', worker: A, data: { r: 'v' }, ...stim });
    expect(strip(s.handleStimulus({ type: 'remove-replicas', keys: ['r'], ...stim }))).toEqual([
      { send: { op: 'release-worker-data', key: 'r' } },
    ]);
    expect(s.tasks.has('r')).toBe(false);
  });

  test('pause stops new executions; unpause resumes them', () => {
    const s = ws();
    s.handleStimulus({ type: 'pause', ...stim });
    expect(s.handleStimulus(compute('x'))).toEqual([]);
    expect(strip(s.handleStimulus({ type: 'unpause', ...stim }))).toEqual([{ type: 'execute', key: 'x' }]);
  });
});

describe('WorkerState: machinery', () => {
  test('story records transitions with stimulus ids', () => {
    const s = ws();
    s.handleStimulus({ ...compute('x'), stimulusId: 'compute-1' });
    const story = s.story('x');
    expect(story.map((e) => [e[1], e[2], e[4]])).toEqual([
      ['released', 'waiting', 'compute-1'],
      ['waiting', 'ready', 'compute-1'],
      ['ready', 'executing', 'compute-1'],
    ]);
  });

  test('the story keeps the last storyLimit entries, oldest first, with their recommendations', () => {
    let t = 0;
    const s = ws({ storyLimit: 4, now: () => ++t });
    s.handleStimulus({ ...compute('x'), stimulusId: 'c-x' }); // 3 transitions: released>waiting>ready>executing
    expect(s.story('x').map((e) => [e[1], e[2]])).toEqual([['released', 'waiting'], ['waiting', 'ready'], ['ready', 'executing']]);
    expect(s.story('x')[0]![3]).toEqual({ x: 'ready' }); // what released>waiting recommended
    s.handleStimulus({ ...ok('x'), stimulusId: 'done-x' }); // executing>memory
    s.handleStimulus({ ...compute('y'), stimulusId: 'c-y' }); // 3 more: the ring of 4 wraps
    const all = s.story('x', 'y');
    expect(all).toHaveLength(4);
    expect(all.map((e) => `${e[0]} ${e[1]}>${e[2]}`)).toEqual(['x executing>memory', 'y released>waiting', 'y waiting>ready', 'y ready>executing']);
    expect(all.map((e) => e[5])).toEqual([...all.map((e) => e[5])].sort((a, b) => a - b)); // oldest first
    expect(s.story('c-y')).toHaveLength(3); // by stimulus id
  });

  test('an impossible transition raises InvalidTransitionError with the story', () => {
    const s = ws();
    s.handleStimulus(compute('x'));
    const ts = s.tasks.get('x');
    if (!ts) throw new Error('no task');
    let err: unknown;
    try {
      s.transition(ts, 'forgotten', 'test', new Map(), []);
      s.transition(s.tasks.get('x') ?? ts, 'waiting', 'test', new Map(), []);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidTransitionError);
    expect((err as InvalidTransitionError).story.length).toBeGreaterThan(0);
  });

  test.each([7, 11, 23, 42, 99, 1234])('a random workload keeps every invariant (seed %i)', (initialSeed) => {
    // Deterministic pseudo-random stream of events; validate runs after each.
    let seed = initialSeed;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const s = ws({ nthreads: 2, resources: { GPU: 1 }, transferIncomingCountLimit: 2 });
    const peers = [A, B, C];
    for (let i = 0; i < 3000; i++) {
      const r = rand(10);
      const key = `k${rand(30)}`;
      if (r < 3) {
        const deps: Record<string, string[]> = {};
        const nbytes: Record<string, number> = {};
        const kn = Number(key.slice(1));
        for (let d = 0; d < kn % 3; d++) {
          const dk = `d${(kn * 7 + d * 3) % 20}`;
          deps[dk] = rand(4) === 0 ? [] : [peers[rand(3)] as string];
          nbytes[dk] = 1 + rand(100);
        }
        s.handleStimulus(compute(key, { whoHas: deps, nbytes, priority: [0, rand(3), rand(5)], resources: rand(5) === 0 ? { GPU: 1 } : undefined }));
      } else if (r < 5) {
        const ex = [...s.executing];
        const t = ex[rand(Math.max(ex.length, 1))];
        if (t) s.handleStimulus(rand(4) === 0 ? { type: 'execute-failure', key: t.key, exception: { name: 'E', message: 'm' }, ...stim } : ok(t.key));
      } else if (r < 7) {
        const ws_ = [...s.inFlightWorkers.keys()];
        const w = ws_[rand(Math.max(ws_.length, 1))];
        if (w) {
          const keys = [...(s.inFlightWorkers.get(w) ?? [])].map((t) => t.key);
          const k = rand(4);
          if (k === 0) s.handleStimulus({ type: 'gather-dep-busy', worker: w, ...stim }, { type: 'retry-busy-worker', worker: w, ...stim });
          else if (k === 1) s.handleStimulus({ type: 'gather-dep-network-failure', worker: w, ...stim });
          else if (k === 2 && rand(2) === 0) s.handleStimulus({ type: 'remove-worker', worker: w, ...stim }, { type: 'gather-dep-network-failure', worker: w, ...stim });
          else s.handleStimulus({ type: 'gather-dep-success', worker: w, data: Object.fromEntries(keys.filter(() => rand(5) > 0).map((kk) => [kk, 1])), ...stim });
        }
      } else if (r < 8) {
        s.handleStimulus({ type: 'free-keys', keys: [key, `d${rand(20)}`], ...stim });
      } else if (r < 9) {
        s.handleStimulus({ type: 'update-data', data: { [`d${rand(20)}`]: 1 }, ...stim });
      } else {
        s.handleStimulus({ type: 'acquire-replicas', whoHas: { [`d${rand(20)}`]: [peers[rand(3)] as string] }, nbytes: {}, ...stim });
      }
    }
    s.validateState();
  });
});
