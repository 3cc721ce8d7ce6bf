import * as net from 'node:net';
import { ConnectionPool } from '@dd/comm';
import { encodeTaskSpec, keyRef, taskDependencies, type ComputeTaskMsg, type FunctionRef } from '@dd/protocol';
import { Worker, type WorkerOptions } from '@dd/worker';
import { FakeScheduler } from './fake-scheduler';

jest.setTimeout(20_000);

const INC: FunctionRef = { kind: 'source', name: 'inc', source: 'function inc(x) { return x + 1; }', hash: 'inc-1' };
const ADD: FunctionRef = { kind: 'source', name: 'add', source: 'function add(a, b) { return a + b; }', hash: 'add-1' };
const FAIL: FunctionRef = { kind: 'source', name: 'fail', source: 'function fail() { throw new TypeError("nope"); }', hash: 'fail-1' };

let n = 0;
/** A compute-task message; dependencies given as the reference's records (whoHas, nbytes). */
function computeTask(key: string, fn: FunctionRef, args: unknown[], deps: { whoHas?: Record<string, string[]>; nbytes?: Record<string, number> } = {}): ComputeTaskMsg {
  const msg: ComputeTaskMsg = { op: 'compute-task', key, spec: encodeTaskSpec({ fn, args }), priority: [0, 0, ++n], stimulusId: `compute-${n}` };
  if (deps.whoHas !== undefined || deps.nbytes !== undefined) msg.dependencies = taskDependencies(deps.whoHas ?? {}, deps.nbytes ?? {});
  return msg;
}

const warnings: string[] = [];
const quiet = { warn: (m: string) => void warnings.push(m) };
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function scheduler(address?: string): Promise<FakeScheduler> {
  const s = await FakeScheduler.start(address);
  cleanups.push(() => s.close());
  return s;
}
async function worker(opts: WorkerOptions): Promise<Worker> {
  const w = await Worker.start({ validate: true, heartbeatIntervalMs: 100, logger: quiet, ...opts });
  cleanups.push(async () => {
    await w.close();
  });
  return w;
}

describe('Worker shell', () => {
  test('registers, computes a task from the stream, reports task-finished', async () => {
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, nthreads: 2, name: 'alice', resources: { GPU: 1 } });
    expect(s.registrations).toHaveLength(1);
    expect(s.registrations[0]).toMatchObject({ op: 'register-worker', address: w.address, name: 'alice', nthreads: 2, resources: { GPU: 1 } });
    s.send(w.address, computeTask('x', INC, [41]));
    const done = await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'x'));
    expect(done).toMatchObject({ op: 'task-finished', key: 'x', type: 'number' });
    expect(w.data.get('x')).toBe(42);
    w.state.validateState();
    // heartbeats carry metrics
    const hb = await s.waitFor(() =>
      s.heartbeats.find((h) => h.address === w.address && (h.metrics as { inMemory: number }).inMemory === 1),
    );
    expect(hb.metrics).toMatchObject({ executing: 0, inMemory: 1, bytesInFlight: 0 });
    expect((hb.metrics as { memory: number }).memory).toBeGreaterThan(0);
  });

  test('two workers exchange a dependency with get-data', async () => {
    const s = await scheduler();
    const a = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline' });
    const b = await worker({ scheduler: s.address, nthreads: 1 });
    const c = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline' });
    s.send(a.address, computeTask('x', INC, [1]));
    await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'x'));
    s.send(b.address, computeTask('y', ADD, [keyRef('x'), 10], { whoHas: { x: [a.address] }, nbytes: { x: 8 } }));
    const y = await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'y'));
    expect(y.from).toBe(b.address);
    expect(b.data.get('y')).toBe(12);
    // an object result computed in a thread can be served to a peer (see realm.ts for why this is tested)
    const OBJ: FunctionRef = { kind: 'source', name: 'obj', source: 'function obj(x) { return { x, list: [x], m: new Map([[1, x]]) }; }', hash: 'obj-1' };
    s.send(b.address, computeTask('o', OBJ, [keyRef('y')], { whoHas: { y: [b.address] }, nbytes: { y: 8 } }));
    await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'o'));
    s.send(a.address, computeTask('p', { kind: 'source', name: 'pick', source: 'function pick(o) { return o.list[0] + o.m.get(1); }', hash: 'pick-1' }, [keyRef('o')], { whoHas: { o: [b.address] }, nbytes: { o: 100 } }));
    await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'p'));
    expect(a.data.get('p')).toBe(24);
    // the same from the inline executor (task code compiled in the host realm)
    s.send(a.address, computeTask('o2', OBJ, [5]));
    await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'o2'));
    s.send(c.address, computeTask('p2', { kind: 'source', name: 'pick', source: 'function pick(o) { return o.list[0] + o.m.get(1); }', hash: 'pick-1' }, [keyRef('o2')], { whoHas: { o2: [a.address] }, nbytes: { o2: 100 } }));
    await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'p2'));
    expect(c.data.get('p2')).toBe(10);
    expect(s.received.find((m) => m.op === 'add-keys' && m.from === b.address)).toMatchObject({ keys: ['x'] });
  });

  test('a failing task reports task-erred with the remote error', async () => {
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, nthreads: 1 });
    s.send(w.address, computeTask('bad', FAIL, []));
    const erred = await s.waitFor(() => s.received.find((m) => m.op === 'task-erred'));
    if (erred.op !== 'task-erred') throw new Error('unreachable');
    expect(erred.exception).toMatchObject({ name: 'TypeError', message: 'nope' });
    expect(erred.exception.stack).toContain('at fail');
  });

  test('a compute-task with malformed dependencies errs with the reason; the worker carries on', async () => {
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline' });
    const bad = computeTask('y', INC, [keyRef('x')]);
    bad.dependencies = { keys: ['x'], nbytes: [8], holders: [], whoHas: [[3]] }; // holder 3 of none
    s.send(w.address, bad);
    const erred = await s.waitFor(() => s.received.find((m) => m.op === 'task-erred' && m.key === 'y'));
    if (erred.op !== 'task-erred') throw new Error('unreachable');
    expect(erred.exception).toMatchObject({ name: 'ProtocolError', message: 'compute-task dependencies: whoHas[0] names holder 3 of 0' });
    expect(w.state.tasks.has('y')).toBe(false);
    expect(warnings.some((m) => m.includes('compute-task "y" is malformed'))).toBe(true);
    s.send(w.address, computeTask('z', INC, [1]));
    await s.waitFor(() => s.received.find((m) => m.op === 'task-finished' && m.key === 'z'));
    w.state.validateState();
  });

  test('a missing holder: missing-data to the scheduler', async () => {
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline', connectTimeoutMs: 300 });
    s.send(w.address, computeTask('y', INC, [keyRef('x')], { whoHas: { x: ['tcp://127.0.0.1:1'] }, nbytes: { x: 8 } }));
    const missing = await s.waitFor(() => s.received.find((m) => m.op === 'missing-data'));
    expect(missing).toMatchObject({ key: 'x', errantWorker: 'tcp://127.0.0.1:1' });
    expect(w.state.tasks.get('x')?.state).toBe('missing');
  });

  test('rpcs: update-data, get-data, delete-data, identity; busy when over the outgoing limit', async () => {
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline' });
    const pool = new ConnectionPool();
    cleanups.push(() => pool.close());
    const rpc = pool.rpc(w.address);
    const upd = await rpc.call<{ nbytes: Record<string, number> }>('update-data', { data: { a: 'hello', b: [1, 2, 3] } });
    expect(Object.keys(upd.nbytes)).toEqual(['a', 'b']);
    expect(await rpc.call('get-data', { keys: ['a', 'b', 'zzz'] })).toEqual({ status: 'OK', data: { a: 'hello', b: [1, 2, 3] } });
    expect(await rpc.call('identity')).toMatchObject({ address: w.address, nthreads: 1 });
    await rpc.call('delete-data', { keys: ['a'] });
    expect(w.data.has('a')).toBe(false);

    const busy = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline', transferOutgoingCountLimit: 0 });
    expect(await pool.rpc(busy.address).call('get-data', { keys: ['a'] })).toEqual({ status: 'busy' });
  });

  test('re-registers when the stream drops', async () => {
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline' });
    await w.whenRegistered();
    s.streams.get(w.address)?.abort();
    await s.waitFor(() => s.registrations.length >= 2);
    expect(s.registrations[1]?.address).toBe(w.address);
  });

  test('close() while reconnecting to a scheduler that is gone stops the connection attempts', async () => {
    const s = await FakeScheduler.start();
    const w = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline', connectTimeoutMs: 60_000, deathTimeoutMs: 0 });
    await w.whenRegistered();
    await s.close();
    for (let i = 0; i < 500 && w.status !== 'reconnecting'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(w.status).toBe('reconnecting');
    await new Promise((r) => setTimeout(r, 100)); // inside a connect() that would retry for 60 s
    await w.close();
    expect(w.status).toBe('closed');
    // Nothing knocks at the old address any more (the retries came at most 1 s apart).
    const port = Number(s.address.split(':').pop());
    let knocks = 0;
    const listener = net.createServer((socket) => {
      knocks++;
      socket.destroy();
    });
    await new Promise<void>((r) => listener.listen(port, '127.0.0.1', r));
    try {
      await new Promise((r) => setTimeout(r, 2500));
      expect(knocks).toBe(0);
    } finally {
      await new Promise((r) => listener.close(r));
    }
  });

  test('closes on the scheduler close message, and when the scheduler is gone past deathTimeoutMs', async () => {
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, nthreads: 1, executor: 'inline' });
    s.send(w.address, { op: 'close', reason: 'test' });
    await w.closed;
    expect(w.status).toBe('closed');

    const s2 = await FakeScheduler.start();
    const w2 = await worker({ scheduler: s2.address, nthreads: 1, executor: 'inline', deathTimeoutMs: 300 });
    await s2.close();
    const t0 = Date.now();
    await w2.closed;
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  test('works over inproc', async () => {
    const s = await scheduler('inproc://');
    const w = await worker({ scheduler: s.address, listen: 'inproc://', nthreads: 1, executor: 'inline' });
    expect(w.address.startsWith('inproc://')).toBe(true);
    s.send(w.address, computeTask('x', INC, [1]));
    await s.waitFor(() => s.received.find((m) => m.op === 'task-finished'));
    expect(w.data.get('x')).toBe(2);
  });

  test('start fails when no scheduler is reachable within deathTimeoutMs; close is idempotent', async () => {
    await expect(Worker.start({ scheduler: 'tcp://127.0.0.1:1', executor: 'inline', deathTimeoutMs: 200, connectTimeoutMs: 100 })).rejects.toThrow(
      /could not reach the scheduler/,
    );
    const s = await scheduler();
    const w = await worker({ scheduler: s.address, executor: 'inline' });
    await Promise.all([w.close(), w.close()]);
    await w.close();
  });
});
