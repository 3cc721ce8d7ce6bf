import { ConnectionPool, Server, connect, silentLogger } from '@dd/comm';
import type { Comm } from '@dd/comm';
import { Scheduler } from '../src/index';

const SPEC = { language: 'js', data: new Uint8Array([1, 2, 3]) };

/** Read until a message satisfying `pred` arrives (stream batches are arrays). */
async function readUntil(comm: Comm, pred: (m: Record<string, unknown>) => boolean, timeoutMs = 3000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('timed out waiting for message');
    const batch = await Promise.race([
      comm.read(),
      new Promise((_, rej) => setTimeout(() => rej(new Error('timed out waiting for message')), left).unref()),
    ]);
    for (const m of Array.isArray(batch) ? batch : [batch]) {
      if (pred(m as Record<string, unknown>)) return m as Record<string, unknown>;
    }
  }
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface FakeWorker {
  server: Server;
  address: string;
  stream: Comm;
  store: Map<string, unknown>;
  close(): Promise<void>;
}

async function fakeWorker(schedulerAddress: string, listen: string, name: string, nthreads = 1): Promise<FakeWorker> {
  const store = new Map<string, unknown>();
  const server = new Server({
    name,
    logger: silentLogger,
    handlers: {
      'get-data': (msg: { keys: string[] }) => {
        const data: Record<string, unknown> = {};
        for (const k of msg.keys) if (store.has(k)) data[k] = store.get(k);
        return { status: 'OK', data };
      },
      ping: (msg: { x: number }) => ({ pong: msg.x, from: name }),
    },
  });
  await server.listen(listen);
  const stream = await connect(schedulerAddress);
  await stream.write({
    op: 'register-worker',
    address: server.address,
    name,
    host: '127.0.0.1',
    nthreads,
    memoryLimit: 1e9,
    resources: {},
    nbytes: {},
    versions: {},
  });
  const reply = (await stream.read()) as { status: string; result: { schedulerId: string; heartbeatIntervalMs: number } };
  expect(reply.status).toBe('OK');
  return {
    server,
    address: server.address,
    stream,
    store,
    close: async () => {
      stream.abort();
      await server.close();
    },
  };
}

async function fakeClient(schedulerAddress: string, id: string): Promise<Comm> {
  const comm = await connect(schedulerAddress);
  await comm.write({ op: 'register-client', client: id, versions: {} });
  const reply = (await comm.read()) as { status: string; result: { schedulerId: string; address: string } };
  expect(reply).toEqual({ status: 'OK', result: { schedulerId: expect.any(String), address: schedulerAddress } });
  return comm;
}

describe.each([
  ['inproc', 'inproc://'],
  ['tcp', 'tcp://127.0.0.1:0'],
])('Scheduler over %s', (_name, listen) => {
  let s: Scheduler;
  let pool: ConnectionPool;
  beforeEach(async () => {
    s = await Scheduler.create({ address: listen, validate: true, logger: silentLogger });
    pool = new ConnectionPool();
  });
  afterEach(async () => {
    await pool.close();
    await s.close();
    s.state.validateState();
  });

  test('worker registers, gets compute-task; client gets key-in-memory; queries answer', async () => {
    const w = await fakeWorker(s.address, listen, 'w1', 2);
    expect(s.state.workers.has(w.address)).toBe(true);
    const c = await fakeClient(s.address, 'client-1');
    await c.write([
      {
        op: 'update-graph',
        client: 'client-1',
        tasks: [
          { key: 'inc-1', spec: SPEC, dependencies: [] },
          { key: 'add-2', spec: SPEC, dependencies: ['inc-1'] },
        ],
        keys: ['add-2'],
        stimulusId: 'ug-1',
      },
    ]);
    const ct = await readUntil(w.stream, (m) => m['op'] === 'compute-task');
    expect(ct).toMatchObject({ op: 'compute-task', key: 'inc-1', priority: [-0, 1, 0], stimulusId: 'ug-1' });
    expect(ct['dependencies']).toBeUndefined();
    expect(ct['spec']).toEqual(SPEC);
    w.store.set('inc-1', 11);
    await w.stream.write([{ op: 'task-finished', key: 'inc-1', nbytes: 8, type: 'number', startstops: [{ action: 'compute', start: 1, stop: 2 }], stimulusId: 'tf-1' }]);
    const ct2 = await readUntil(w.stream, (m) => m['op'] === 'compute-task');
    // inc-1 is on this worker: its size, and nobody to fetch it from.
    expect(ct2).toMatchObject({ key: 'add-2', dependencies: { keys: ['inc-1'], nbytes: [8], holders: [], whoHas: [[]] } });
    w.store.set('add-2', 13);
    await w.stream.write({ op: 'task-finished', key: 'add-2', nbytes: 8, type: 'number', startstops: [], stimulusId: 'tf-2' });
    expect(await readUntil(c, (m) => m['op'] === 'key-in-memory')).toEqual({ op: 'key-in-memory', key: 'add-2', type: 'number' });
    const freed = await readUntil(w.stream, (m) => m['op'] === 'free-keys');
    expect(freed['keys']).toEqual(['inc-1']);

    const rpc = pool.rpc(s.address);
    expect(await rpc.call('who-has', { keys: ['add-2', 'nope'] })).toEqual({ 'add-2': [w.address], nope: [] });
    expect(await rpc.call('has-what')).toEqual({ [w.address]: ['add-2'] });
    expect(await rpc.call('nthreads')).toEqual({ [w.address]: 2 });
    expect(await rpc.call('nbytes', { keys: ['add-2'] })).toEqual({ 'add-2': 8 });
    expect(await rpc.call('processing')).toEqual({ [w.address]: [] });
    const ident = (await rpc.call('identity')) as { type: string; id: string; workers: Record<string, { name: string; nthreads: number }> };
    expect(ident).toMatchObject({ type: 'Scheduler', id: s.id, address: s.address, workers: { [w.address]: { name: 'w1', nthreads: 2 } } });
    const story = (await rpc.call('story', { keys: ['add-2'] })) as unknown[][];
    expect(story.filter((e) => e[0] === 'add-2').map((e) => e[2])).toEqual(['waiting', 'processing', 'memory']);
    expect(await rpc.call('gather', { keys: ['add-2'] })).toEqual({ status: 'OK', data: { 'add-2': 13 } });
    expect(await rpc.call('gather', { keys: ['inc-1'] })).toEqual({ status: 'missing', keys: ['inc-1'] });
    expect(await rpc.call('broadcast', { msg: { op: 'ping', x: 7 } })).toEqual({ [w.address]: { pong: 7, from: 'w1' } });
    expect(await rpc.call('heartbeat-worker', { address: w.address, now: Date.now(), metrics: {} })).toEqual({
      status: 'OK',
      heartbeatIntervalMs: 1000,
    });
    expect(await rpc.call('heartbeat-worker', { address: 'tcp://nobody:1', now: 0, metrics: {} })).toEqual({ status: 'missing' });

    // the client releases its future: the worker is told to free the data
    await c.write([{ op: 'client-releases-keys', client: 'client-1', keys: ['add-2'], stimulusId: 'rel' }]);
    expect((await readUntil(w.stream, (m) => m['op'] === 'free-keys'))['keys']).toEqual(['add-2']);
    await until(() => s.state.tasks.size === 0);
    await c.write({ op: 'close-client', client: 'client-1' });
    await until(() => !s.state.clients.has('client-1'));
    c.abort();
    await w.close();
  });

  test('scatter registration and a worker disconnecting mid-run', async () => {
    const w1 = await fakeWorker(s.address, listen, 'w1');
    const w2 = await fakeWorker(s.address, listen, 'w2');
    const c = await fakeClient(s.address, 'c');
    const rpc = pool.rpc(s.address);
    w1.store.set('data-x', 'hello');
    expect(await rpc.call('update-data', { client: 'c', whoHas: { 'data-x': [w1.address] }, nbytes: { 'data-x': 5 }, stimulusId: 'sc' })).toEqual({
      keys: ['data-x'],
    });
    expect(await readUntil(c, (m) => m['op'] === 'key-in-memory')).toEqual({ op: 'key-in-memory', key: 'data-x' });
    // a task restricted to w2 on top of scattered data on w1
    await c.write({ op: 'update-graph', client: 'c', tasks: [{ key: 'f', spec: SPEC, dependencies: ['data-x'], workers: [w2.address] }], keys: ['f'], stimulusId: 'ug' });
    await readUntil(w2.stream, (m) => m['op'] === 'compute-task' && m['key'] === 'f');
    // w1 dies: the scattered data is lost, f cannot run any more
    await w1.close();
    expect(await readUntil(c, (m) => m['op'] === 'lost-data')).toEqual({ op: 'lost-data', key: 'data-x' });
    await until(() => !s.state.workers.has(w1.address) && s.state.tasks.size === 0);
    await w2.close();
    c.abort();
  });

  test('bad input gets error replies and the server keeps serving', async () => {
    const rpc = pool.rpc(s.address);
    await expect(rpc.call('register-worker', { address: 'tcp://x:1' })).rejects.toMatchObject({ remoteName: 'BadMessageError' });
    await expect(rpc.call('register-worker', { nthreads: 1 })).rejects.toMatchObject({ remoteMessage: expect.stringContaining('address') });
    await expect(rpc.call('register-client', {})).rejects.toMatchObject({ remoteName: 'BadMessageError' });
    await expect(rpc.call('who-has', { keys: 'not-an-array' })).rejects.toMatchObject({ remoteName: 'BadMessageError' });
    await expect(rpc.call('cancel', { keys: ['a'] })).rejects.toMatchObject({ remoteName: 'BadMessageError' });
    await expect(rpc.call('update-data', { client: 'c', whoHas: { k: 'nope' } })).rejects.toMatchObject({ remoteName: 'BadMessageError' });
    await expect(rpc.call('broadcast', { msg: 3 })).rejects.toMatchObject({ remoteName: 'BadMessageError' });
    // malformed stream messages are dropped; a malformed update-graph cancels its keys
    const c = await fakeClient(s.address, 'c');
    await c.write([{ op: 'update-graph', tasks: [{ key: 'k' }], keys: ['k'] }, { op: 'client-releases-keys' }, 42, { op: 'no-such-op' }]);
    expect(await readUntil(c, (m) => m['op'] === 'cancelled-keys')).toMatchObject({ op: 'cancelled-keys', keys: ['k'] });
    // so does one with a priority that is not a number, or whose tasks wait on each other
    await c.write({ op: 'update-graph', tasks: [{ key: 'p', spec: SPEC, dependencies: [] }], keys: ['p'], userPriority: 'high' });
    expect(await readUntil(c, (m) => m['op'] === 'cancelled-keys')).toMatchObject({ keys: ['p'], reason: expect.stringContaining('userPriority') });
    const cyclic = [
      { key: 'a', spec: SPEC, dependencies: ['b'] },
      { key: 'b', spec: SPEC, dependencies: ['c'] },
      { key: 'c', spec: SPEC, dependencies: ['a'] },
      { key: 'd', spec: SPEC, dependencies: [] },
    ];
    await c.write({ op: 'update-graph', tasks: cyclic, keys: ['a', 'd'] });
    expect(await readUntil(c, (m) => m['op'] === 'cancelled-keys')).toMatchObject({
      keys: ['a', 'd'],
      reason: expect.stringContaining('cycle (3 tasks): a -> b -> c -> a'),
    });
    expect(s.state.tasks.size).toBe(0);
    // a stream barrier without an id is dropped; one with an id is answered with it
    await c.write([{ op: 'stream-barrier', client: 'c' }, { op: 'stream-barrier', client: 'c', id: 7 }]);
    expect(await readUntil(c, (m) => m['op'] === 'stream-barrier')).toEqual({ op: 'stream-barrier', id: 7 });
    // duplicate worker registration is refused
    const w = await fakeWorker(s.address, listen, 'w1');
    await expect(
      rpc.call('register-worker', { address: w.address, name: 'other', host: 'h', nthreads: 1, memoryLimit: 1, resources: {}, nbytes: {}, versions: {} }),
    ).rejects.toMatchObject({ remoteName: 'WorkerExistsError' });
    // still serving
    expect(await rpc.call('nthreads')).toEqual({ [w.address]: 1 });
    await w.close();
    c.abort();
  });
});

test('work stealing over the wire: the busy worker is asked, and its answer moves the task', async () => {
  const s = await Scheduler.create({ address: 'inproc://', validate: true, logger: silentLogger, workStealingIntervalMs: 20 });
  try {
    const w1 = await fakeWorker(s.address, 'inproc://', 'w1');
    const w2 = await fakeWorker(s.address, 'inproc://', 'w2');
    const c = await fakeClient(s.address, 'c');
    // Loosely restricted to w1: placed there, and free to move.
    const tasks = Array.from({ length: 6 }, (_, i) => ({ key: `t-${i}`, spec: SPEC, dependencies: [], workers: [w1.address], allowOtherWorkers: true }));
    await c.write({ op: 'update-graph', client: 'c', tasks, keys: tasks.map((t) => t.key), stimulusId: 'ug' });
    const req = (await readUntil(w1.stream, (m) => m['op'] === 'steal-request')) as { key: string; stimulusId: string };
    expect(s.state.tasks.get(req.key)?.processingOn?.address).toBe(w1.address);
    // A malformed answer is dropped (and the stream stays open); a proper one moves the task.
    await w1.stream.write({ op: 'steal-response', key: req.key, state: 5 });
    await w1.stream.write({ op: 'steal-response', key: req.key, state: 'ready', stimulusId: req.stimulusId });
    await readUntil(w2.stream, (m) => m['op'] === 'compute-task' && m['key'] === req.key);
    expect(s.state.tasks.get(req.key)?.processingOn?.address).toBe(w2.address);
    await w1.close();
    await w2.close();
    c.abort();
  } finally {
    await s.close();
  }
});

test('a silent worker is removed after workerTtlMs', async () => {
  const s = await Scheduler.create({ address: 'inproc://', validate: true, logger: silentLogger, workerTtlMs: 100, heartbeatIntervalMs: 20 });
  try {
    const w = await fakeWorker(s.address, 'inproc://', 'w');
    expect(s.state.workers.size).toBe(1);
    await until(() => s.state.workers.size === 0, 2000);
    await w.close();
  } finally {
    await s.close();
  }
});

test('unregister-worker is a clean departure; close() resolves closed', async () => {
  const s = await Scheduler.create({ address: 'inproc://', validate: true, logger: silentLogger });
  const pool = new ConnectionPool();
  try {
    const w = await fakeWorker(s.address, 'inproc://', 'w');
    const c = await fakeClient(s.address, 'c');
    await c.write({ op: 'update-graph', client: 'c', tasks: [{ key: 't', spec: SPEC, dependencies: [] }], keys: ['t'], stimulusId: 'u' });
    await readUntil(w.stream, (m) => m['op'] === 'compute-task');
    expect(await pool.rpc(s.address).call('unregister-worker', { address: w.address })).toEqual({ status: 'OK' });
    expect(s.state.workers.size).toBe(0);
    expect(s.state.tasks.get('t')?.suspicious).toBe(0);
    expect(s.state.tasks.get('t')?.state).toBe('no-worker');
    await w.close();
    c.abort();
  } finally {
    await pool.close();
    await s.close();
  }
  await expect(s.closed).resolves.toBeUndefined();
});

test('a large map is placed in slices; stream messages after it wait for the last slice; plugins see it once', async () => {
  const s = await Scheduler.create({ address: 'inproc://', validate: true, logger: silentLogger });
  try {
    const w = await fakeWorker(s.address, 'inproc://', 'w');
    const c = await fakeClient(s.address, 'c');
    const taskCounts: number[] = [];
    const graphsSeen: number[] = [];
    s.addObserver({
      onStimuli: (events) => {
        taskCounts.push(s.state.tasks.size);
        for (const ev of events) if (ev.kind === 'update-graph') graphsSeen.push(ev.tasks.length);
      },
    });
    const tasks = Array.from({ length: 2500 }, (_, i) => ({ key: `inc-${i}`, spec: SPEC, dependencies: [] as string[] }));
    // One wire batch: the map, then a release of a key of its last slice.
    await c.write([
      { op: 'update-graph', client: 'c', tasks, keys: tasks.map((t) => t.key), stimulusId: 'ug' },
      { op: 'client-releases-keys', client: 'c', keys: ['inc-2499'], stimulusId: 'rel' },
    ]);
    await until(() => taskCounts.length >= 3);
    // Slices of 1 000, one stimulus each; the release came after the last one, so it took effect.
    expect(taskCounts.slice(0, 3)).toEqual([1000, 2000, 2499]);
    expect(graphsSeen).toEqual([2500]);
    expect(s.state.tasks.has('inc-2499')).toBe(false);
    await readUntil(w.stream, (m) => m['op'] === 'compute-task' && m['key'] === 'inc-0');
    c.abort();
    await w.close();
  } finally {
    await s.close();
  }
});

test('a request-reply call while a map is still being placed answers from all of it', async () => {
  const s = await Scheduler.create({ address: 'inproc://', validate: true, logger: silentLogger });
  const pool = new ConnectionPool();
  try {
    const c = await fakeClient(s.address, 'c');
    const tasks = Array.from({ length: 2500 }, (_, i) => ({ key: `inc-${i}`, spec: SPEC, dependencies: [] as string[] }));
    let seen: number | undefined;
    const rpc = pool.rpc(s.address);
    // Ask as soon as the first slice is in (the rest waits for the next turns of the event loop).
    const asked = new Promise<void>((resolve) => {
      const remove = s.addObserver({
        onStimuli: () => {
          remove();
          void rpc.call('processing').then(() => {
            seen = s.state.tasks.size;
            resolve();
          });
        },
      });
    });
    await c.write({ op: 'update-graph', client: 'c', tasks, keys: tasks.map((t) => t.key), stimulusId: 'ug' });
    await asked;
    expect(seen).toBe(2500);
    c.abort();
  } finally {
    await pool.close();
    await s.close();
  }
});

test('a graph handing one worker 250 000 tasks at once reaches it whole (no argument spreading of the batch)', async () => {
  // Before, the batch went out as send(...msgs): past ~120 000 arguments that is a RangeError,
  // and the tasks, already processing in the state machine, were never sent (the graph hung).
  const s = await Scheduler.create({ address: 'inproc://', logger: silentLogger });
  try {
    const w = await fakeWorker(s.address, 'inproc://', 'w');
    const c = await fakeClient(s.address, 'c');
    const n = 250_000;
    const tasks: Array<{ key: string; spec: typeof SPEC; dependencies: string[] }> = Array.from({ length: n }, (_, i) => ({ key: `x-${i}`, spec: SPEC, dependencies: [] }));
    // A task over all of them: a graph, not a map, so it is placed in one stimulus.
    tasks.push({ key: 'total', spec: SPEC, dependencies: tasks.map((t) => t.key) });
    await c.write({ op: 'update-graph', client: 'c', tasks, keys: ['total'], stimulusId: 'ug' });
    let seen = 0;
    const deadline = Date.now() + 30_000;
    while (seen < n) {
      if (Date.now() > deadline) throw new Error(`only ${seen} of ${n} compute-tasks arrived`);
      const batch = (await Promise.race([w.stream.read(), new Promise((_, rej) => setTimeout(() => rej(new Error(`only ${seen} of ${n} compute-tasks arrived`)), 30_000).unref())])) as unknown;
      for (const m of Array.isArray(batch) ? batch : [batch]) if ((m as { op?: string }).op === 'compute-task') seen++;
    }
    expect(seen).toBe(n);
    c.abort();
    await w.close();
  } finally {
    await s.close();
  }
}, 60_000);
