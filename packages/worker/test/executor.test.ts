import * as path from 'node:path';
import { encodeTaskSpec, keyRef, type FunctionRef } from '@dd/protocol';
import { InlineExecutor, ThreadPoolExecutor, type Executor, type TaskOutcome } from '@dd/worker';

const FIXTURES = __dirname;

let hashN = 0;
function src(fn: string, name = 'f'): FunctionRef {
  return { kind: 'source', name, source: fn, hash: `h${++hashN}-${name}` };
}
function job(fn: FunctionRef, args: unknown[], deps: Record<string, unknown> = {}) {
  return { key: `k${++hashN}`, spec: encodeTaskSpec({ fn, args }), deps: new Map(Object.entries(deps)) };
}
function value(o: TaskOutcome): unknown {
  if (!o.ok) throw new Error(`task failed: ${o.error.name}: ${o.error.message}`);
  return o.value;
}

const SLEEP = `function sleepSync(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); return ms; }`;

describe.each([
  ['threads', () => ThreadPoolExecutor.create({ nthreads: 2, cwd: FIXTURES })],
  ['inline', async () => new InlineExecutor({ nthreads: 2, cwd: FIXTURES })],
] as const)('%s executor', (kind, make) => {
  let ex: Executor;
  beforeAll(async () => {
    ex = await make();
  });
  afterAll(async () => {
    await ex.close();
  });

  test('runs a sync function with dependency values substituted for KeyRefs', async () => {
    const o = await ex.run(job(src('function add(a, b) { return a + b.n; }', 'add'), [keyRef('x'), { n: keyRef('y') }], { x: 1, y: 41 }));
    expect(value(o)).toBe(42);
    expect(o.ok && o.type).toBe('number');
  });

  test('compute times: fractional durations, and tasks that ran one after another do not overlap', async () => {
    // Starts are whole wall-clock milliseconds and durations come from the monotonic clock; a
    // start must not precede the previous stop, or the task stream draws back-to-back tiny tasks
    // as overlapping (the performance report gave one row per task started in the same ms).
    const f = src('function tiny(x) { return x + 1; }', 'tiny');
    const outcomes: TaskOutcome[] = [];
    for (let i = 0; i < 300; i++) outcomes.push(await ex.run(job(f, [i])));
    expect(outcomes.some((o) => !Number.isInteger(o.stop - o.start))).toBe(true);
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i]!;
      expect(o.stop).toBeGreaterThanOrEqual(o.start);
      if (i > 0) expect(o.start).toBeGreaterThanOrEqual(outcomes[i - 1]!.stop);
    }
  });

  test('awaits async functions', async () => {
    const f = src('async function later(x) { await new Promise((r) => setTimeout(r, 20)); return [x, "done"]; }', 'later');
    expect(value(await ex.run(job(f, [7])))).toEqual([7, 'done']);
  });

  test('require and dynamic import inside a source function', async () => {
    const f = src(`function useRequire(a, b) { return require('node:path').posix.join(a, b); }`, 'useRequire');
    expect(value(await ex.run(job(f, ['a', 'b'])))).toBe('a/b');
    if (kind === 'threads') {
      // (jest's sandbox does not provide import() to code compiled in the main context)
      const g = src(`async function useImport() { const m = await import('node:path'); return m.posix.sep; }`, 'useImport');
      expect(value(await ex.run(job(g, [])))).toBe('/');
    }
  });

  test('module references resolve relative to the worker directory', async () => {
    const o = await ex.run(job({ kind: 'module', module: './fixtures/tasks.js', export: 'double' }, [21]));
    expect(value(o)).toBe(42);
    const where = await ex.run(job({ kind: 'module', module: path.join(FIXTURES, 'fixtures/tasks.js'), export: 'whereAmI' }, []));
    expect(value(where)).toBe(kind === 'threads' ? 'thread' : 'main');
    if (kind === 'threads') {
      const esm = await ex.run(job({ kind: 'module', module: './fixtures/esm-tasks.mjs', export: 'triple' }, [3]));
      expect(value(esm)).toBe(9);
    }
  });

  test('a closure variable fails with ClosureVariableError naming the variable and the fix', async () => {
    const o = await ex.run(job(src('function usesOuter(x) { return x + factor; }', 'usesOuter'), [1]));
    expect(o.ok).toBe(false);
    if (o.ok) return;
    expect(o.error.name).toBe('ClosureVariableError');
    expect(o.error.message).toContain(`task function usesOuter refers to 'factor', which is not defined on the worker`);
    expect(o.error.message).toContain('Pass factor as an argument');
    expect(o.error.message).toContain('ref(module, export)');
  });

  test('task errors carry name, message and the remote stack', async () => {
    const o = await ex.run(job(src('function fails(x) { throw new RangeError("bad " + x); }', 'fails'), [3]));
    expect(o.ok).toBe(false);
    if (o.ok) return;
    expect(o.error.name).toBe('RangeError');
    expect(o.error.message).toBe('bad 3');
    expect(o.error.stack).toMatch(/at fails \(.*dd-task-fails-/);
  });

  test('a class runs as its constructor; its instance is the result', async () => {
    const f = src('class Point { constructor(x, y) { this.x = x; this.y = y; } norm() { return Math.hypot(this.x, this.y); } }', 'Point');
    const o = await ex.run(job(f, [3, 4]));
    expect({ ...(value(o) as object) }).toEqual({ x: 3, y: 4 });
  });

  test('a native constructor by module reference is constructed; callable natives stay plain calls', async () => {
    const native = (name: string, args: unknown[]) => ex.run(job({ kind: 'module', module: './fixtures/natives.js', export: name }, args));
    // Map and Set throw "Constructor Map requires 'new'" when called: they run as `new Map(...)`.
    const map = value(await native('Map', [[['a', 1], ['b', 2]]]));
    expect(map).toBeInstanceOf(Map);
    expect(map).toEqual(new Map([['a', 1], ['b', 2]]));
    const set = value(await native('Set', [[1, 2, 2, 3]]));
    expect(set).toBeInstanceOf(Set);
    expect(set).toEqual(new Set([1, 2, 3]));
    // Callable natives are called: Number('5') is the number 5, not a Number object.
    const five = await native('Number', ['5']);
    expect(value(five)).toBe(5);
    expect(five.ok && five.type).toBe('number');
    expect(value(await native('String', [5]))).toBe('5');
  }, 10_000);

  test('a native function\'s other errors are its task\'s, and it is not constructed after them', async () => {
    const native = (name: string, args: unknown[]) => ex.run(job({ kind: 'module', module: './fixtures/natives.js', export: name }, args));
    const failure = async (name: string, args: unknown[]) => {
      const o = await native(name, args);
      if (o.ok) throw new Error(`${name} succeeded with ${JSON.stringify(o.value)}`);
      return o.error;
    };
    expect(await failure('BigInt', ['x'])).toMatchObject({ name: 'SyntaxError', message: 'Cannot convert x to a BigInt' });
    // Constructed, Map(5) fails as `new Map(5)` does: the constructor's own error.
    expect(await failure('Map', [5])).toMatchObject({ name: 'TypeError', message: expect.stringContaining('is not iterable') });
    // A bound function passing on "requires 'new'" from a Map() inside: failed, not run again with `new`.
    expect(await failure('callsMapWithoutNew', [])).toMatchObject({ name: 'TypeError', message: "Constructor Map requires 'new'" });
  }, 10_000);

  test('a result that dd could not send fails its task with the reason, not its first transfer', async () => {
    const f = src('function cyclic() { const a = { b: [] }; a.b.push(a); return a; }', 'cyclic');
    const o = await ex.run(job(f, []));
    expect(o.ok).toBe(false);
    if (o.ok) return;
    expect(o.error.name).toBe('SerializationError');
    expect(o.error.message).toBe(
      "the task's result cannot be sent to other workers or clients: the value refers to itself: value.b[0] is the same object as an enclosing one (a cycle); dd sends plain data (msgpack), which has no references, so return or pass data without cycles",
    );
  });

  test('Buffers stay Buffers', async () => {
    const f = src('function cat(a) { return Buffer.concat([a, Buffer.alloc(8192, 1)]); }', 'cat');
    const o = await ex.run(job(f, [keyRef('b')], { b: Buffer.from('hi') }));
    const v = value(o) as Buffer;
    expect(Buffer.isBuffer(v)).toBe(true);
    expect(v.length).toBe(8194);
    expect(o.ok && o.nbytes).toBeGreaterThanOrEqual(8194);
  });
});

describe('thread pool', () => {
  test('two sleeping tasks on two threads run in parallel', async () => {
    const ex = await ThreadPoolExecutor.create({ nthreads: 2, cwd: FIXTURES });
    try {
      const f = src(SLEEP, 'sleepSync');
      await Promise.all([ex.run(job(f, [10])), ex.run(job(f, [10]))]); // warm up
      // Each task reports when it ran; on two threads the two intervals overlap (run one after
      // the other, the second would start after the first ended), however loaded the machine.
      const span = src(`function span(ms) { const start = Date.now(); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); return [start, Date.now()]; }`, 'span');
      const outs = await Promise.all([ex.run(job(span, [400])), ex.run(job(span, [400]))]);
      const [[aStart, aEnd], [bStart, bEnd]] = outs.map(value) as [[number, number], [number, number]];
      expect(aStart).toBeLessThan(bEnd);
      expect(bStart).toBeLessThan(aEnd);
    } finally {
      await ex.close();
    }
  });

  test('more tasks than threads queue up; a thread that dies is replaced', async () => {
    const ex = await ThreadPoolExecutor.create({ nthreads: 1, cwd: FIXTURES });
    try {
      const dies = await ex.run(job(src('function dies() { process.exit(3); }', 'dies'), []));
      expect(dies.ok).toBe(false);
      const inc = src('function inc(x) { return x + 1; }', 'inc');
      const outs = await Promise.all([1, 2, 3].map((i) => ex.run(job(inc, [i]))));
      expect(outs.map(value)).toEqual([2, 3, 4]);
    } finally {
      await ex.close();
    }
  });

  test('a result that cannot be cloned fails clearly', async () => {
    const ex = await ThreadPoolExecutor.create({ nthreads: 1, cwd: FIXTURES });
    try {
      const o = await ex.run(job(src('function mk() { return { f() {} }; }', 'mk'), []));
      expect(o.ok).toBe(false);
      if (!o.ok) expect(o.error.message).toContain('cannot leave its executor thread');
    } finally {
      await ex.close();
    }
  });
});

describe('thread pool with a queue depth', () => {
  test('a thread holds several jobs and runs them one at a time, in order, async ones included', async () => {
    const ex = await ThreadPoolExecutor.create({ nthreads: 1, cwd: FIXTURES, queueDepth: 3 });
    try {
      expect(ex.slotCount).toBe(3);
      // Each task records when it started and ended on the thread's clock; no overlap allowed.
      const f = src(
        'async function span(i) { const a = performance.now(); await new Promise((r) => setTimeout(r, 15)); return [i, a, performance.now()]; }',
        'span',
      );
      const outs = (await Promise.all([0, 1, 2, 3, 4].map((i) => ex.run(job(f, [i]))))).map(value) as Array<[number, number, number]>;
      expect(outs.map((o) => o[0])).toEqual([0, 1, 2, 3, 4]);
      for (let i = 1; i < outs.length; i++) expect(outs[i]![1]).toBeGreaterThanOrEqual(outs[i - 1]![2]);
    } finally {
      await ex.close();
    }
  });

  test('idle: true only once every job it took has been answered', async () => {
    const ex = await ThreadPoolExecutor.create({ nthreads: 1, cwd: FIXTURES, queueDepth: 2 });
    try {
      expect(ex.idle).toBe(true);
      const f = src('async function wait(ms) { await new Promise((r) => setTimeout(r, ms)); return ms; }', 'wait');
      // Three jobs: two held by the thread, one waiting in the pool's queue.
      const seen: boolean[] = [];
      const runs = [30, 10, 10].map((ms) => ex.run(job(f, [ms])).then((o) => (seen.push(ex.idle), value(o))));
      expect(ex.idle).toBe(false);
      expect(await Promise.all(runs)).toEqual([30, 10, 10]);
      // As each outcome arrives: busy while others are out, idle at the last one.
      expect(seen).toEqual([false, false, true]);
      expect(ex.idle).toBe(true);
    } finally {
      await ex.close();
    }
  });

  test('jobs queued behind a task that kills its thread run on the replacement thread', async () => {
    const ex = await ThreadPoolExecutor.create({ nthreads: 1, cwd: FIXTURES, queueDepth: 3 });
    try {
      const inc = src('function inc(x) { return x + 1; }', 'inc');
      const [dies, ...rest] = await Promise.all([
        ex.run(job(src('function dies() { process.exit(3); }', 'dies'), [])),
        ...[1, 2, 3].map((i) => ex.run(job(inc, [i]))),
      ]);
      expect(dies!.ok).toBe(false);
      expect(rest.map(value)).toEqual([2, 3, 4]);
    } finally {
      await ex.close();
    }
  });
});

test('compute times follow the wall clock again after it is set back', async () => {
  const ex = new InlineExecutor({ nthreads: 1, cwd: FIXTURES });
  const f = src('function tiny2(x) { return x; }', 'tiny2');
  const realNow = Date.now.bind(Date);
  try {
    const before = await ex.run(job(f, [1]));
    const setBack = realNow() - 10_000;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => setBack);
    try {
      const after = await ex.run(job(f, [2]));
      expect(after.start).toBe(setBack); // not held at the previous stop, 10 s ahead
      expect(after.stop).toBeGreaterThanOrEqual(after.start);
      expect(before.start).toBeGreaterThan(after.start);
    } finally {
      spy.mockRestore();
    }
  } finally {
    await ex.close();
  }
});

test.each([
  ['threads', () => ThreadPoolExecutor.create({ nthreads: 1, cwd: FIXTURES })],
  ['inline', async () => new InlineExecutor({ nthreads: 1, cwd: FIXTURES })],
] as const)('%s executor: a function source is compiled once per hash, not once per task', async (_kind, make) => {
  const ex: Executor = await make();
  try {
    // Evaluating the source creates a fresh counter: the count says how often it was compiled.
    const source = '(() => { let calls = 0; return function counted() { calls += 1; return calls; }; })()';
    const f = src(source, 'counted');
    const runs: unknown[] = [];
    for (let i = 0; i < 3; i++) runs.push(value(await ex.run(job(f, []))));
    expect(runs).toEqual([1, 2, 3]);
    // The same source under another hash is another function (another compile).
    expect(value(await ex.run(job(src(source, 'counted'), [])))).toBe(1);
    expect(value(await ex.run(job(f, [])))).toBe(4);
  } finally {
    await ex.close();
  }
});
