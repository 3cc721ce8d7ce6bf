import {
  CommClosedError, ConnectionPool, NO_REPLY, RemoteError, Server, connect, rpc, silentLogger,
  type HandlerContext,
} from '../src/index';
import { Resources } from './helpers';

jest.setTimeout(20_000);

const res = new Resources();
afterEach(() => res.closeAll());

function makeServer(extra: Partial<ConstructorParameters<typeof Server>[0]> = {}): Server {
  return res.server(new Server({
    name: 'test',
    logger: silentLogger,
    handlers: {
      ping: () => 'pong',
      add: (msg: { x: number; y: number }) => msg.x + msg.y,
      echo: (msg: { value: unknown }) => msg.value,
      slow: async (msg: { ms: number; value: unknown }) => {
        await new Promise((r) => setTimeout(r, msg.ms));
        return msg.value;
      },
      fail: () => {
        throw Object.assign(new RangeError('bad range'), { code: 'E_RANGE' });
      },
      failAsync: async () => {
        throw new TypeError('async failure');
      },
      silent: () => NO_REPLY,
      peer: (_msg: unknown, ctx: HandlerContext) => ctx.peerAddress,
    },
    ...extra,
  }));
}

test('request/reply over tcp through a pool; the comm is reused', async () => {
  const server = makeServer();
  await server.listen('tcp://127.0.0.1:0');
  const pool = res.pool(new ConnectionPool({ limit: 10 }));
  const r = pool.rpc(server.address);
  expect(await r.call('ping')).toBe('pong');
  expect(await r.call('add', { x: 2, y: 3 })).toBe(5);
  const buf = Buffer.alloc(50_000, 1);
  expect(Buffer.from((await r.call('echo', { value: buf })) as Uint8Array).equals(buf)).toBe(true);
  for (let i = 0; i < 20; i++) await r.call('ping');
  expect(pool.openCount).toBe(1);
  expect(server.connectionCount).toBe(1);
  expect(await r.call('peer')).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
});

test('a handler that throws gives a RemoteError with the remote name, message, stack and code; the server keeps serving', async () => {
  const server = makeServer();
  await server.listen(0);
  const r = res.pool(rpc(server.address));
  const err = (await r.call('fail').catch((e: unknown) => e)) as RemoteError;
  expect(err).toBeInstanceOf(RemoteError);
  expect(err.code).toBe('DD_ERR_REMOTE');
  expect(err.remoteName).toBe('RangeError');
  expect(err.remoteMessage).toBe('bad range');
  expect(err.remoteCode).toBe('E_RANGE');
  expect(err.remoteStack).toMatch(/RangeError: bad range/);
  await expect(r.call('failAsync')).rejects.toMatchObject({ remoteName: 'TypeError', remoteMessage: 'async failure' });
  expect(await r.call('ping')).toBe('pong');
});

test('an unknown op gets an error reply naming it and the known ops, and the comm stays open', async () => {
  const server = makeServer();
  await server.listen(0);
  const comm = res.comm(await connect(server.address));
  await comm.write({ op: 'nope' });
  const reply = (await comm.read()) as { status: string; error: { name: string; message: string; code: string } };
  expect(reply.status).toBe('error');
  expect(reply.error.code).toBe('DD_ERR_UNKNOWN_OP');
  expect(reply.error.message).toMatch(/"nope"/);
  expect(reply.error.message).toMatch(/ping/);
  expect(reply.error.message).toMatch(/add/);
  await comm.write({ op: 'constructor' });
  expect(await comm.read()).toMatchObject({ status: 'error', error: { code: 'DD_ERR_UNKNOWN_OP' } });
  await comm.write({ notAnOp: 1 });
  expect(await comm.read()).toMatchObject({ status: 'error', error: { code: 'DD_ERR_BAD_REQUEST' } });
  await comm.write({ op: 'ping' });
  expect(await comm.read()).toEqual({ status: 'OK', result: 'pong' });
});

test('NO_REPLY and reply:false send nothing; the next request is answered', async () => {
  const server = makeServer();
  await server.listen(0);
  const comm = res.comm(await connect(server.address));
  await comm.write({ op: 'silent' });
  await comm.write({ op: 'add', x: 1, y: 1, reply: false });
  await comm.write({ op: 'echo', value: 'after' });
  expect(await comm.read()).toEqual({ status: 'OK', result: 'after' });
});

test('1000 concurrent rpc calls get the right replies over a bounded pool', async () => {
  const server = makeServer();
  await server.listen(0);
  const pool = res.pool(new ConnectionPool({ limit: 20 }));
  const r = pool.rpc(server.address);
  const results = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? r.call('slow', { ms: 1, value: i }) : r.call('add', { x: i, y: 1000 }))),
  );
  results.forEach((v, i) => expect(v).toBe(i % 3 === 0 ? i : i + 1000));
  expect(pool.openCount).toBeLessThanOrEqual(20);
  expect(pool.openCount).toBeGreaterThan(1);
});

test('a peer that dies mid-call rejects the call with CommClosedError; the pool drops the dead comm', async () => {
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));
  const server = makeServer({
    handlers: {
      hang: (_m: unknown, ctx: HandlerContext) => {
        resolveStarted();
        setTimeout(() => ctx.comm.abort(), 20);
        return new Promise(() => {});
      },
      ping: () => 'pong',
    },
    closeTimeout: 100,
  });
  await server.listen(0);
  const pool = res.pool(new ConnectionPool({ limit: 4 }));
  const r = pool.rpc(server.address);
  const call = r.call('hang');
  await started;
  await expect(call).rejects.toBeInstanceOf(CommClosedError);
  expect(pool.openCount).toBe(0);
  expect(await r.call('ping')).toBe('pong');
  expect(pool.openCount).toBe(1);
});

test('abortAddress: a call waiting on a peer that will never answer rejects at once; idle comms to it close; other peers are untouched', async () => {
  const frozen = makeServer({ closeTimeout: 100 });
  const other = makeServer();
  await frozen.listen(0);
  await other.listen(0);
  const pool = res.pool(new ConnectionPool());
  expect(await pool.rpc(frozen.address).call('ping')).toBe('pong');
  expect(await pool.rpc(other.address).call('ping')).toBe('pong');
  expect(pool.openCount).toBe(2);
  const waiting = pool.rpc(frozen.address).call('silent'); // no reply, no timeout: it would wait forever
  const idle = pool.rpc(frozen.address).call('ping'); // a second comm to the same peer, idle afterwards
  expect(await idle).toBe('pong');
  pool.abortAddress(frozen.address);
  await expect(waiting).rejects.toBeInstanceOf(CommClosedError);
  expect(pool.openCount).toBe(1);
  expect(await pool.rpc(other.address).call('ping')).toBe('pong');
  expect(pool.openCount).toBe(1);
});

test('call timeout rejects with TimeoutError and drops the comm', async () => {
  const server = makeServer({ closeTimeout: 100 });
  await server.listen(0);
  const pool = res.pool(new ConnectionPool());
  const r = pool.rpc(server.address);
  await expect(r.call('slow', { ms: 2000, value: 1 }, { timeout: 50 })).rejects.toMatchObject({ code: 'DD_ERR_TIMEOUT' });
  expect(pool.openCount).toBe(0);
  expect(await r.call('ping')).toBe('pong');
});

test('a call timeout bounds connecting too: a peer that refuses connections fails the call within it', async () => {
  // A port that was free a moment ago: connecting is refused, and connect() retries until its
  // own timeout (10 s here) unless the call's bound is shorter.
  const probe = makeServer();
  await probe.listen(0);
  const address = probe.address;
  await probe.close();
  const pool = res.pool(new ConnectionPool({ timeout: 10_000 }));
  const t0 = Date.now();
  await expect(pool.rpc(address).call('ping', {}, { timeout: 300 })).rejects.toMatchObject({ code: 'DD_ERR_TIMEOUT' });
  expect(Date.now() - t0).toBeLessThan(5_000);
  expect(pool.openCount).toBe(0);
});

test('stream handlers receive single and batched messages; unknown stream ops are skipped; close ends the stream', async () => {
  const seen: unknown[] = [];
  let streamClosed!: () => void;
  const closed = new Promise<void>((r) => (streamClosed = r));
  const server = makeServer({
    handlers: {
      'register-stream': async (_m: unknown, ctx: HandlerContext) => {
        await ctx.comm.write({ status: 'OK', result: 'streaming' });
        await ctx.server.handleStream(ctx.comm, { onClose: streamClosed });
        return NO_REPLY;
      },
    },
    streamHandlers: {
      'task-finished': (msg: { key: string }) => seen.push(msg.key),
      explode: () => {
        throw new Error('stream handler bug');
      },
    },
  });
  await server.listen(0);
  const comm = res.comm(await connect(server.address));
  await comm.write({ op: 'register-stream' });
  expect(await comm.read()).toEqual({ status: 'OK', result: 'streaming' });
  await comm.write({ op: 'task-finished', key: 'a' });
  await comm.write([{ op: 'task-finished', key: 'b' }, { op: 'unknown-thing' }, { op: 'explode' }, { op: 'task-finished', key: 'c' }]);
  await comm.write([{ op: 'task-finished', key: 'd' }]);
  await comm.close();
  await closed;
  expect(seen).toEqual(['a', 'b', 'c', 'd']);
});

test('connection limit: beyond it new connections are refused in the handshake; connect retries until its timeout', async () => {
  const server = makeServer({ connectionLimit: 2 });
  await server.listen(0);
  const a = res.comm(await connect(server.address));
  const b = res.comm(await connect(server.address));
  // (This failed on CI twice: the deadline ran out inside the last attempt's handshake, and that
  // timeout escaped raw instead of reporting the refusals before it. Fixed in connect().)
  const err = await connect(server.address, { timeout: 1500 }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'DD_ERR_TIMEOUT' });
  expect((err as Error).message).toMatch(/connection limit of 2/);
  expect((err as { cause?: { code?: string } }).cause?.code).toBe('DD_ERR_CONNECTION_LIMIT');
  // Once a slot frees up, a waiting connect gets in.
  const waiting = connect(server.address, { timeout: 5000 });
  setTimeout(() => a.abort(), 50);
  const c = res.comm(await waiting);
  await c.write({ op: 'ping' });
  expect(await c.read()).toEqual({ status: 'OK', result: 'pong' });
  expect(b.closed).toBe(false);
});

test('server.close() stops listening, closes comms, lets in-flight handlers reply', async () => {
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));
  const server = new Server({
    logger: silentLogger,
    handlers: {
      slow: async () => {
        resolveStarted();
        await new Promise((r) => setTimeout(r, 100));
        return 'done';
      },
    },
  });
  await server.listen('tcp://127.0.0.1:0');
  const address = server.address;
  const idle = res.comm(await connect(address));
  const busy = res.comm(await connect(address));
  await busy.write({ op: 'slow' });
  await started; // in flight (a fixed sleep was not always long enough on a loaded machine)
  const closing = server.close();
  expect(await busy.read()).toEqual({ status: 'OK', result: 'done' });
  await closing;
  await expect(idle.read()).rejects.toBeInstanceOf(CommClosedError);
  await expect(busy.read()).rejects.toBeInstanceOf(CommClosedError);
  await expect(connect(address, { timeout: 200 })).rejects.toMatchObject({ code: 'DD_ERR_TIMEOUT' });
  expect(server.connectionCount).toBe(0);
});

test('a server over inproc and ws works the same', async () => {
  for (const address of ['inproc://', 'ws://127.0.0.1:0']) {
    const server = makeServer();
    await server.listen(address);
    const r = res.pool(rpc(server.address));
    expect(await r.call('add', { x: 20, y: 22 })).toBe(42);
    await expect(r.call('fail')).rejects.toBeInstanceOf(RemoteError);
    await r.close();
    await server.close();
  }
});
