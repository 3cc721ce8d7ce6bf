// A peer sending garbage must only ever cost its own connection: the server logs, closes that
// connection and keeps serving others (proved by a successful rpc afterwards). No unhandled
// rejection or uncaught exception may escape (jest fails the test file if one does).

import { randomBytes } from 'node:crypto';
import { encodeMessage } from '@dd/protocol';
import { ConnectionPool, Server, connect, type Logger } from '../src/index';
import { HANDSHAKE, Resources, packed, rawConnect, waitForClose } from './helpers';

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
  const { server, debug } = await start();
  const s = await rawConnect(server.address, res);
  s.write(randomBytes(4096));
  await waitForClose(s);
  expect(debug.join('\n')).toMatch(/Error|limit|handshake/i);
  await stillServes(server);
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

test('a peer that connects and says nothing is dropped after the handshake timeout', async () => {
  const warnings: string[] = [];
  const server = res.server(new Server({ logger: { debug: (m) => warnings.push(m), info() {}, warn() {}, error() {} }, handlers: { ping: () => 'pong' }, handshakeTimeout: 100 }));
  await server.listen('tcp://127.0.0.1:0');
  const s = await rawConnect(server.address, res);
  await waitForClose(s, 2000);
  expect(warnings.join('\n')).toMatch(/handshake/);
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
