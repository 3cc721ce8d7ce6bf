// A peer sending garbage must only ever cost its own connection: the server logs, closes that
// connection and keeps serving others (proved by a successful rpc afterwards). No unhandled
// rejection or uncaught exception may escape (jest fails the test file if one does).

import { randomBytes } from 'node:crypto';
import { encodeMessage } from '@dd/protocol';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConnectionPool, Server, TimeoutError, connect, type Logger } from '../src/index';
import { HANDSHAKE, Resources, packed, rawConnect, waitForClose, waitUntil } from './helpers';

jest.setTimeout(20_000);

const res = new Resources();
afterEach(() => res.closeAll());

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

async function start(limits?: { maxFrames?: number; maxFrameBytes?: number; maxMessageBytes?: number }): Promise<{ server: Server; warnings: string[]; debug: string[] }> {
  const warnings: string[] = [];
  const debug: string[] = [];
  const logger: Logger = {
    debug: (m) => debug.push(m),
    info: () => {},
    warn: (m) => warnings.push(m),
    error: (m) => warnings.push(m),
  };
  const server = res.server(new Server({ logger, handlers: { ping: () => 'pong' }, limits, handshakeTimeout: 2000 }));
  await server.listen('tcp://127.0.0.1:0');
  return { server, warnings, debug };
}

/**
 * Sends a valid handshake and waits for the server's, so what follows is read by the request
 * loop. (Garbage arriving in the same chunk as the handshake would end the connection right
 * after the handshake is read.)
 */
async function handshaken(address: string): Promise<import('node:net').Socket> {
  const s = await rawConnect(address, res);
  const { FrameDecoder } = await import('@dd/protocol');
  const decoder = new FrameDecoder();
  let received = 0;
  // Handshake, then one ping answered: the server's request loop is now waiting for a message.
  const answered = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      received += decoder.push(new Uint8Array(chunk)).length;
      if (received === 2) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
  });
  s.write(Buffer.concat([packed(HANDSHAKE), packed({ op: 'ping' })]));
  await answered;
  return s;
}

async function stillServes(server: Server): Promise<void> {
  const pool = res.pool(new ConnectionPool());
  expect(await pool.rpc(server.address).call('ping')).toBe('pong');
}

test('random bytes instead of a handshake: that connection is closed', async () => {
  const { server, warnings } = await start();
  const s = await rawConnect(server.address, res);
  s.write(randomBytes(4096));
  await waitForClose(s);
  expect(warnings.join('\n')).toMatch(/Error|limit|handshake/i);
  await stillServes(server);
});

// Garbage before the handshake is an operator's business (an HTTP client or a misconfigured
// client at the scheduler port): one warning per connection naming the peer and the error.
test.each([
  ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /ProtocolError: tcp:\/\/127\.0\.0\.1:\d+ did not start with a dd handshake \(it sent "GET \/ HTTP\/1\.1\.\.\."\)/],
  ['0xff bytes', Buffer.alloc(64, 0xff), /ProtocolError: .*did not start with a dd handshake \(it sent bytes ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff \.\.\.\)/],
  ['a huge frame length', Buffer.concat([u64(1n), u64(2n ** 40n)]), /FrameLimitError: frame length 1099511627776 exceeds the limit/],
  ['invalid msgpack', Buffer.concat([u64(1n), u64(4n), Buffer.from([0xc1, 0xc1, 0xc1, 0xff])]), /DeserializationError: /],
  ['random bytes', randomBytes(100_000), /ProtocolError: .*did not start with a dd handshake \(it sent bytes ([0-9a-f]{2} ){16}\.\.\.\): is a client that does not speak dd pointed at this port\?$/],
  ['part of a message, then FIN', Buffer.from([1, 0, 0, 0, 0]), /ProtocolError: connection from .* closed in the middle of a message \(5 bytes/],
])('garbage before the handshake (%s) is logged as one warning naming the peer and the error', async (_what, bytes, expected) => {
  const { server, warnings, debug } = await start();
  const s = await rawConnect(server.address, res);
  const peer = `tcp://127.0.0.1:${s.localPort}`;
  s.end(bytes);
  await waitForClose(s);
  await new Promise((r) => setTimeout(r, 20));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain(`connection from ${peer} failed before being served: `);
  expect(warnings[0]).toMatch(expected);
  expect(warnings[0]).not.toMatch(/\n\s+at /); // no stack
  expect(debug).toEqual([]);
  await stillServes(server);
});

test('a peer that sends a few bytes and then nothing: the handshake timeout is a warning that says so', async () => {
  const warnings: string[] = [];
  const server = res.server(new Server({ logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) }, handshakeTimeout: 100 }));
  await server.listen('tcp://127.0.0.1:0');
  const s = await rawConnect(server.address, res);
  s.write(Buffer.from('hi\n'));
  await waitForClose(s, 2000);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/^connection from tcp:\/\/127\.0\.0\.1:\d+ failed before being served: TimeoutError: .*within 100 ms \(3 bytes of an incomplete message received\)$/);
});

test('a peer that connects and closes without sending anything is logged at debug only', async () => {
  const { server, warnings, debug } = await start();
  const s = await rawConnect(server.address, res);
  const peer = `tcp://127.0.0.1:${s.localPort}`;
  s.end();
  await waitForClose(s);
  await new Promise((r) => setTimeout(r, 20));
  expect(warnings).toEqual([]);
  expect(debug.join('\n')).toContain(`connection from ${peer} failed before being served: CommClosedError`);
  await stillServes(server);
});

test('a null request gets a BadRequestError reply and the comm stays open', async () => {
  const { server, warnings } = await start();
  const comm = res.comm(await connect(server.address));
  await comm.write(null);
  expect(await comm.read()).toMatchObject({ status: 'error', error: { name: 'BadRequestError', code: 'DD_ERR_BAD_REQUEST' } });
  for (const bad of [[], 7, 'ping', { close: false }]) {
    await comm.write(bad);
    expect(await comm.read()).toMatchObject({ status: 'error', error: { code: 'DD_ERR_BAD_REQUEST' } });
  }
  await comm.write({ op: 'ping' });
  expect(await comm.read()).toEqual({ status: 'OK', result: 'pong' });
  expect(comm.closed).toBe(false);
  expect(warnings).toEqual([]);
});

test('random bytes after a valid handshake', async () => {
  const { server, warnings } = await start();
  const s = await handshaken(server.address);
  s.write(randomBytes(4096));
  await waitForClose(s);
  expect(warnings.length).toBeGreaterThan(0);
  await stillServes(server);
});

test('a truncated prelude, then the peer closes', async () => {
  const { server, warnings } = await start();
  const s = await handshaken(server.address);
  s.end(Buffer.concat([u64(3n), u64(10n)])); // says 3 frames, gives one length, then FIN
  await waitForClose(s);
  await new Promise((r) => setTimeout(r, 20));
  expect(warnings.join('\n')).toMatch(/middle of a message/);
  await stillServes(server);
});

test('huge announced lengths are refused before anything is allocated', async () => {
  const { server, warnings } = await start({ maxMessageBytes: 1 << 20 });
  const s = await handshaken(server.address);
  s.write(Buffer.concat([u64(1n), u64(2n ** 62n)]));
  await waitForClose(s);
  expect(warnings.join('\n')).toMatch(/limit/);

  const s2 = await handshaken(server.address);
  s2.write(u64(2n ** 40n)); // frame count
  await waitForClose(s2);
  await stillServes(server);
});

test('invalid msgpack in frame 0', async () => {
  const { server, warnings } = await start();
  const s = await handshaken(server.address);
  const garbage = Buffer.from([0xc1, 0xc1, 0xc1, 0xff]); // 0xc1 is never valid msgpack
  s.write(Buffer.concat([u64(1n), u64(BigInt(garbage.length)), garbage]));
  await waitForClose(s);
  expect(warnings.length).toBeGreaterThan(0);
  await stillServes(server);
});

test('a valid message that is not a handshake first', async () => {
  const { server } = await start();
  const s = await rawConnect(server.address, res);
  s.write(packed({ op: 'ping' }));
  await waitForClose(s);
  await stillServes(server);
});

test('an incompatible protocol version gets a clear ProtocolError on the connecting side', async () => {
  const { createServer } = await import('node:net');
  const fake = createServer((sock) => {
    sock.on('error', () => {});
    sock.write(packed({ ...HANDSHAKE, versions: { protocol: 99, dd: '9.0.0' } }));
  });
  res.add(() => new Promise((r) => fake.close(r)));
  res.add(() => {
    for (const s of sockets) s.destroy();
  });
  const sockets: import('node:net').Socket[] = [];
  fake.on('connection', (s) => sockets.push(s));
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  const port = (fake.address() as import('node:net').AddressInfo).port;
  const err = await connect(`tcp://127.0.0.1:${port}`, { timeout: 2000 }).catch((e: unknown) => e);
  expect(err).toMatchObject({ name: 'ProtocolError', code: 'DD_ERR_PROTOCOL' });
  expect((err as Error).message).toMatch(/version 99.*version 1/);
});

test('unknown ops over a raw socket get an error reply and the connection stays usable', async () => {
  const { server } = await start();
  const s = await rawConnect(server.address, res);
  const { FrameDecoder, decodeMessage } = await import('@dd/protocol');
  const decoder = new FrameDecoder();
  const replies: unknown[] = [];
  let notify: (() => void) | undefined;
  s.on('data', (chunk: Buffer) => {
    for (const m of decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) replies.push(decodeMessage(m));
    notify?.();
  });
  const next = async (): Promise<unknown> => {
    while (replies.length === 0) await new Promise<void>((r) => (notify = r));
    return replies.shift();
  };
  s.write(packed(HANDSHAKE));
  expect(await next()).toMatchObject({ op: 'handshake' });
  s.write(packed({ op: 'no-such-op', x: 1 }));
  expect(await next()).toMatchObject({ status: 'error', error: { code: 'DD_ERR_UNKNOWN_OP' } });
  s.write(packed({ op: 'ping' }));
  expect(await next()).toEqual({ status: 'OK', result: 'pong' });
  expect(encodeMessage).toBeDefined();
});

test('a peer that connects and says nothing is dropped after the handshake timeout (logged at debug only)', async () => {
  const debug: string[] = [];
  const warnings: string[] = [];
  const server = res.server(new Server({ logger: { debug: (m) => debug.push(m), info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) }, handlers: { ping: () => 'pong' }, handshakeTimeout: 100 }));
  await server.listen('tcp://127.0.0.1:0');
  const s = await rawConnect(server.address, res);
  await waitForClose(s, 2000);
  expect(debug.join('\n')).toMatch(/handshake/);
  expect(warnings).toEqual([]);
  await stillServes(server);
});

test('messages that arrive in the same chunk before bad bytes are still read, then the error', async () => {
  // A raw peer answers the handshake, then sends two whole messages and a prelude over the
  // limit in one write: the reader gets both messages, then the FrameLimitError, then closed.
  const { createServer } = await import('node:net');
  const { FrameLimitError } = await import('@dd/protocol');
  const raw = createServer((socket) => {
    res.socket(socket);
    socket.once('data', () => {
      socket.write(Buffer.concat([packed(HANDSHAKE), packed({ n: 1 }), packed({ n: 2 }), u64(1n), u64(2n ** 40n)]));
    });
  });
  res.add(() => new Promise((r) => raw.close(r)));
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const port = (raw.address() as import('node:net').AddressInfo).port;
  const comm = res.comm(await connect(`tcp://127.0.0.1:${port}`, { limits: { maxFrameBytes: 1 << 20 } }));
  expect(await comm.read()).toEqual({ n: 1 });
  expect(await comm.read()).toEqual({ n: 2 });
  await expect(comm.read()).rejects.toBeInstanceOf(FrameLimitError);
  expect(comm.closed).toBe(true);
});

/** A plain `net` server that runs `onSocket` for each connection; returns its tcp:// address. */
async function rawServer(onSocket: (socket: import('node:net').Socket) => void): Promise<string> {
  const { createServer } = await import('node:net');
  const raw = createServer((socket) => {
    res.socket(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  res.add(() => new Promise((r) => raw.close(r)));
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  return `tcp://127.0.0.1:${(raw.address() as import('node:net').AddressInfo).port}`;
}

test('connecting to a server that answers HTTP says it is not a dd server, at once', async () => {
  const address = await rawServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  });
  const started = Date.now();
  const err = await connect(address, { timeout: 5000 }).catch((e: unknown) => e);
  expect(err).toMatchObject({ name: 'ProtocolError', code: 'DD_ERR_PROTOCOL' });
  expect((err as Error).message).toBe(
    `${address} did not answer as a dd server (it sent "HTTP/1.1 400 Bad Request..."): is this the right address and port?`,
  );
  // The decoder's own error stays reachable; and it was not retried until the timeout.
  expect((err as Error).cause).toMatchObject({ name: 'FrameLimitError' });
  expect(Date.now() - started).toBeLessThan(2000);
});

test('a first message whose prelude is plausible but over the limits keeps the FrameLimitError', async () => {
  const { FrameLimitError } = await import('@dd/protocol');
  const address = await rawServer((socket) => {
    socket.once('data', () => socket.write(Buffer.concat([u64(1n), u64(2n ** 40n)])));
  });
  const err = await connect(address, { timeout: 2000 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FrameLimitError);
  expect((err as Error).message).toMatch(/frame length 1099511627776 exceeds the limit/);
});

/**
 * An ordinary HTTP server (no WebSocket support) answering every request, WebSocket upgrades
 * included, with `status`. Returns its port and a count of the requests it got.
 */
async function httpServer(status: number): Promise<{ port: number; requests: () => number }> {
  let requests = 0;
  const server = createHttpServer((_req, reply) => {
    requests++;
    reply.writeHead(status).end();
  });
  res.add(() => new Promise((r) => {
    server.closeAllConnections();
    server.close(r);
  }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, requests: () => requests };
}

test.each([
  [404, 'HTTP 404 Not Found'],
  [400, 'HTTP 400 Bad Request'],
  [426, 'HTTP 426 Upgrade Required'],
])('ws:// to an HTTP server answering %i says it is not a dd server, at once', async (status, answer) => {
  const { port, requests } = await httpServer(status);
  const address = `ws://127.0.0.1:${port}`;
  const started = Date.now();
  const err = await connect(address, { timeout: 10_000 }).catch((e: unknown) => e);
  // Not retried until the 10 s timeout: one request, one clear error.
  expect(Date.now() - started).toBeLessThan(3000);
  expect(err).toMatchObject({ name: 'ProtocolError', code: 'DD_ERR_PROTOCOL' });
  expect((err as Error).message).toBe(
    `${address} did not answer as a dd server (${answer} to the WebSocket upgrade): is this the right address and port?`,
  );
  expect(requests()).toBe(1);
});

test('ws:// to a server answering 503 (say a proxy whose dd server is not up yet) is retried until the timeout', async () => {
  const { port, requests } = await httpServer(503);
  const started = Date.now();
  const err = await connect(`ws://127.0.0.1:${port}`, { timeout: 800 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TimeoutError);
  expect((err as Error).message).toMatch(/timed out after 800 ms .*last error: .*HTTP 503 Service Unavailable/);
  expect(Date.now() - started).toBeGreaterThanOrEqual(750);
  expect(requests()).toBeGreaterThan(1);
});

describe('warnings about peers that are not dd are throttled per host', () => {
  afterEach(() => jest.restoreAllMocks());

  test('several garbage connections from one host give one warning; the next one after 60 s counts the others', async () => {
    const { server, warnings, debug } = await start();
    const sendGarbage = async (): Promise<void> => {
      const s = await rawConnect(server.address, res);
      s.end('GET / HTTP/1.1\r\n\r\n');
      await waitForClose(s);
    };
    // Each from its own port: the throttle is per host.
    for (let i = 0; i < 4; i++) await sendGarbage();
    await waitUntil(() => warnings.length + debug.length === 4, 'four connections to be logged');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^connection from tcp:\/\/127\.0\.0\.1:\d+ failed before being served: ProtocolError: .*did not start with a dd handshake/);
    expect(warnings[0]).not.toMatch(/more from this host/);
    // The dropped ones are still there for whoever runs with debug logging.
    expect(debug).toHaveLength(3);
    expect(debug[0]).toMatch(/did not start with a dd handshake/);

    // Date.now only (the throttle reads the clock when a warning comes; it has no timers).
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 61_000);
    await sendGarbage();
    await waitUntil(() => warnings.length === 2, 'a second warning');
    expect(warnings[1]).toMatch(/did not start with a dd handshake .* \(and 3 more from this host in the last 6[12] s\)$/);
    jest.restoreAllMocks();
    await stillServes(server);
  });
});
