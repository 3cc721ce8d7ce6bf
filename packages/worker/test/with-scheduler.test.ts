// Workers against the real @dd/scheduler, with a bare-bones client speaking the wire protocol.
import { connect, type Comm } from '@dd/comm';
import { encodeTaskSpec, keyRef, type FunctionRef, type TaskDefinition } from '@dd/protocol';
import { Scheduler } from '@dd/scheduler';
import { Worker } from '@dd/worker';

jest.setTimeout(20_000);

const INC: FunctionRef = { kind: 'source', name: 'inc', source: 'function inc(x) { return x + 1; }', hash: 'inc-1' };
const ADD: FunctionRef = { kind: 'source', name: 'add', source: 'function add(a, b) { return a + b; }', hash: 'add-1' };
const quiet = { warn: () => {} };

function task(key: string, fn: FunctionRef, args: unknown[], dependencies: string[] = []): TaskDefinition {
  return { key, spec: encodeTaskSpec({ fn, args }), dependencies };
}

async function readUntil(comm: Comm, pred: (m: Record<string, unknown>) => boolean, ms = 10_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('timed out');
    const msg = await Promise.race([comm.read(), new Promise((_, rej) => setTimeout(() => rej(new Error('timed out')), left).unref())]);
    for (const m of (Array.isArray(msg) ? msg : [msg]) as Record<string, unknown>[]) if (pred(m)) return m;
  }
}

test('two workers compute a small graph submitted to the real scheduler', async () => {
  const scheduler = await Scheduler.create({ validate: true, logger: { debug() {}, info() {}, warn() {}, error() {} } });
  const workers: Worker[] = [];
  let client: Comm | undefined;
  try {
    workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, validate: true, logger: quiet }));
    workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', validate: true, logger: quiet }));
    client = await connect(scheduler.address, { timeout: 5000 });
    await client.write({ op: 'register-client', client: 'c1', versions: {} });
    expect(await client.read()).toMatchObject({ status: 'OK' });
    const tasks = [
      task('a', INC, [1]),
      task('b', INC, [10]),
      task('c', ADD, [keyRef('a'), keyRef('b')], ['a', 'b']),
    ];
    await client.write([{ op: 'update-graph', client: 'c1', tasks, keys: ['c'], stimulusId: 'ug-1' }]);
    await readUntil(client, (m) => m['op'] === 'key-in-memory' && m['key'] === 'c');
    const holder = workers.find((w) => w.data.has('c'));
    expect(holder?.data.get('c')).toBe(13);
    for (const w of workers) w.state.validateState();
  } finally {
    await client?.close();
    await Promise.all(workers.map((w) => w.close()));
    await scheduler.close();
  }
});

test('a large Buffer fetched from a peer reaches the consuming task in a thread intact, from shared memory', async () => {
  const scheduler = await Scheduler.create({ validate: true, logger: { debug() {}, info() {}, warn() {}, error() {} } });
  const workers: Worker[] = [];
  let client: Comm | undefined;
  try {
    for (let i = 0; i < 2; i++) workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, validate: true, logger: quiet }));
    const [a, b] = workers as [Worker, Worker];
    client = await connect(scheduler.address, { timeout: 5000 });
    await client.write({ op: 'register-client', client: 'c1', versions: {} });
    expect(await client.read()).toMatchObject({ status: 'OK' });
    const MAKE: FunctionRef = {
      kind: 'source',
      name: 'make',
      source: 'function make(n) { const b = Buffer.alloc(n); for (let i = 0; i < n; i += 4096) b[i] = (i / 4096) % 251; return b; }',
      hash: 'make-1',
    };
    // Checks the bytes and says what memory the task saw.
    const CHECK: FunctionRef = {
      kind: 'source',
      name: 'check',
      source:
        'function check(b) { for (let i = 0; i < b.length; i += 4096) if (b[i] !== (i / 4096) % 251) return "bad byte at " + i; ' +
        'return [Buffer.isBuffer(b), b.length, b.buffer.constructor.name]; }',
      hash: 'check-1',
    };
    const n = 3 * 2 ** 20;
    const tasks = [
      { ...task('big', MAKE, [n]), workers: [a.address] },
      { ...task('check', CHECK, [keyRef('big')], ['big']), workers: [b.address] },
    ];
    await client.write([{ op: 'update-graph', client: 'c1', tasks, keys: ['check'], stimulusId: 'ug-1' }]);
    await readUntil(client, (m) => m['op'] === 'key-in-memory' && m['key'] === 'check');
    expect(b.data.get('check')).toEqual([true, n, 'SharedArrayBuffer']);
  } finally {
    await client?.close();
    await Promise.all(workers.map((w) => w.close()));
    await scheduler.close();
  }
});
