import { BatchedSend, CommClosedError, Server, connect, listen, silentLogger, type Comm } from '../src/index';
import { Resources } from './helpers';

jest.setTimeout(20_000);

const res = new Resources();
afterEach(() => res.closeAll());

async function tcpPair(): Promise<{ client: Comm; server: Comm }> {
  let got!: (c: Comm) => void;
  const serverSide = new Promise<Comm>((r) => (got = r));
  const listener = res.listener(listen('tcp://127.0.0.1:0', (c) => got(res.comm(c))));
  await listener.start();
  const client = res.comm(await connect(listener.contactAddress));
  return { client, server: await serverSide };
}

test('coalesces many small messages into few array messages, in order', async () => {
  const { client, server } = await tcpPair();
  const bs = new BatchedSend({ intervalMs: 5, maxWriteMessages: 10_000 });
  bs.start(client);
  for (let i = 0; i < 1000; i++) bs.send({ op: 'task', i });
  bs.send({ op: 'a' }, { op: 'b' });
  const received: unknown[] = [];
  let batches = 0;
  while (received.length < 1002) {
    const batch = (await server.read()) as unknown[];
    expect(Array.isArray(batch)).toBe(true);
    batches++;
    received.push(...batch);
  }
  expect(batches).toBeLessThanOrEqual(2);
  expect(received.slice(0, 3)).toEqual([{ op: 'task', i: 0 }, { op: 'task', i: 1 }, { op: 'task', i: 2 }]);
  expect(received.slice(-2)).toEqual([{ op: 'a' }, { op: 'b' }]);
  await bs.close();
  expect(client.closed).toBe(true);
});

test('a batch longer than maxWriteMessages goes out as consecutive writes, in order, without waiting for the interval', async () => {
  const { client, server } = await tcpPair();
  const bs = new BatchedSend({ intervalMs: 60_000, maxBatchMessages: 1, maxWriteMessages: 400 });
  bs.start(client);
  bs.send(...Array.from({ length: 1000 }, (_, i) => ({ op: 'task', i })));
  const sizes: number[] = [];
  const received: unknown[] = [];
  while (received.length < 1000) {
    const batch = (await server.read()) as unknown[];
    sizes.push(batch.length);
    received.push(...batch);
  }
  expect(sizes).toEqual([400, 400, 200]);
  expect(received).toEqual(Array.from({ length: 1000 }, (_, i) => ({ op: 'task', i })));
  expect(bs.pending).toBe(0);
  await bs.close();
});

test('sendAll takes a list longer than a call can spread (250 000 messages), in order', async () => {
  // In process, so the test measures the batching, not 250 000 encodings on a busy machine.
  let got!: (c: Comm) => void;
  const serverSide = new Promise<Comm>((r) => (got = r));
  const listener = res.listener(listen('inproc://', (c) => got(res.comm(c))));
  await listener.start();
  const client = res.comm(await connect(listener.contactAddress));
  const server = await serverSide;
  const bs = new BatchedSend({ intervalMs: 1, maxBatchMessages: 1, maxWriteMessages: 50_000 });
  bs.start(client);
  const n = 250_000;
  const msgs = Array.from({ length: n }, (_, i) => ({ i }));
  expect(() => bs.sendAll(msgs)).not.toThrow();
  let next = 0;
  while (next < n) {
    for (const m of (await server.read()) as Array<{ i: number }>) {
      if (m.i !== next) throw new Error(`message ${m.i} arrived where ${next} was due`);
      next++;
    }
  }
  await bs.close();
});

test('a large batch is written at once, without waiting for the interval', async () => {
  const { client, server } = await tcpPair();
  const bs = new BatchedSend({ intervalMs: 10_000, maxBatchBytes: 1024 });
  bs.start(client);
  bs.send({ op: 'big', data: Buffer.alloc(2048) });
  const batch = (await server.read()) as Array<{ op: string }>;
  expect(batch.map((m) => m.op)).toEqual(['big']);
  bs.send({ op: 'small' });
  const started = Date.now();
  bs.abort();
  // abort() does not wait for the 10 s interval (a loose bound: only a wait that long fails it).
  expect(Date.now() - started).toBeLessThan(5000);
});

test('many messages: max batch size triggers immediate writes', async () => {
  const { client, server } = await tcpPair();
  const bs = new BatchedSend({ intervalMs: 10_000, maxBatchMessages: 100 });
  bs.start(client);
  for (let i = 0; i < 250; i++) bs.send(i);
  // The 100th message triggers a write at once; what piles up meanwhile goes as soon as that
  // write completes (the trigger is a threshold, not a cap), all well before the 10 s interval.
  const first = (await server.read()) as number[];
  expect(first.length).toBe(100);
  const rest = (await server.read()) as number[];
  expect(rest).toEqual(Array.from({ length: 150 }, (_, i) => i + 100));
  await bs.close();
});

test('close() flushes pending messages before closing', async () => {
  const { client, server } = await tcpPair();
  const bs = new BatchedSend({ intervalMs: 60_000 });
  bs.start(client);
  bs.send({ op: 'x' }, { op: 'y' });
  await bs.close();
  expect(await server.read()).toEqual([{ op: 'x' }, { op: 'y' }]);
  await expect(server.read()).rejects.toBeInstanceOf(CommClosedError);
  expect(() => bs.send({ op: 'late' })).toThrow(CommClosedError);
});

test('never writes on a closed comm; the peer closing stops it and send() throws', async () => {
  const { client, server } = await tcpPair();
  const errors: Error[] = [];
  const bs = new BatchedSend({ intervalMs: 1, onError: (e) => errors.push(e) });
  bs.start(client);
  bs.send({ op: 'one' });
  expect(await server.read()).toEqual([{ op: 'one' }]);
  server.abort();
  await bs.stoppedPromise;
  expect(bs.closed).toBe(true);
  expect(() => bs.send({ op: 'two' })).toThrow(CommClosedError);
});

test('a write error (unserializable message) closes the comm and is reported', async () => {
  const { client } = await tcpPair();
  const errors: Error[] = [];
  const bs = new BatchedSend({ intervalMs: 1, onError: (e) => errors.push(e) });
  bs.start(client);
  bs.send({ op: 'bad', fn: () => 1, sym: Symbol('x') });
  const err = await bs.stoppedPromise;
  if (err !== undefined) {
    expect(errors).toEqual([err]);
    expect(client.closed).toBe(true);
  } else {
    // The serializer accepted it (e.g. by dropping functions): then it was simply sent.
    expect(errors).toEqual([]);
  }
});

test('messages sent before start() go out once started; feeds a server stream handler', async () => {
  const seen: number[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const server = res.server(new Server({
    logger: silentLogger,
    handlers: {
      stream: async (_m: unknown, ctx) => {
        await ctx.server.handleStream(ctx.comm, { onClose: done });
      },
    },
    streamHandlers: { n: (msg: { n: number }) => seen.push(msg.n) },
  }));
  await server.listen('tcp://127.0.0.1:0');
  const comm = res.comm(await connect(server.address));
  await comm.write({ op: 'stream', reply: false });
  const bs = new BatchedSend({ intervalMs: 2 });
  for (let i = 0; i < 10; i++) bs.send({ op: 'n', n: i });
  bs.start(comm);
  for (let i = 10; i < 5000; i++) bs.send({ op: 'n', n: i });
  await bs.close();
  await finished;
  expect(seen.length).toBe(5000);
  expect(seen[4999]).toBe(4999);
  expect(bs.messagesSent).toBe(5000);
});
