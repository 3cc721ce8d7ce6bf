import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { FrameDecoder, decodeMessage } from '@dd/protocol';
import { CommClosedError, connect, getAddressHostPort, listen, type Comm, type ConnectOptions, type ListenOptions } from '../src/index';
import { Resources, makeTlsMaterial, waitUntil } from './helpers';

jest.setTimeout(20_000);

const res = new Resources();
afterEach(() => res.closeAll());

interface Transport {
  name: string;
  listenAddress: string;
  listenOptions(): ListenOptions;
  connectOptions(): ConnectOptions;
  byReference: boolean;
}

const tls = (): ReturnType<typeof makeTlsMaterial> => makeTlsMaterial();

const transports: Transport[] = [
  { name: 'tcp', listenAddress: 'tcp://127.0.0.1:0', listenOptions: () => ({}), connectOptions: () => ({}), byReference: false },
  {
    name: 'tls',
    listenAddress: 'tls://127.0.0.1:0',
    listenOptions: () => ({ ca: tls().ca, cert: tls().serverCert, key: tls().serverKey }),
    connectOptions: () => ({ ca: tls().ca, cert: tls().clientCert, key: tls().clientKey }),
    byReference: false,
  },
  { name: 'ws', listenAddress: 'ws://127.0.0.1:0', listenOptions: () => ({}), connectOptions: () => ({}), byReference: false },
  {
    name: 'wss',
    listenAddress: 'wss://127.0.0.1:0',
    listenOptions: () => ({ ca: tls().ca, cert: tls().serverCert, key: tls().serverKey }),
    connectOptions: () => ({ ca: tls().ca, cert: tls().clientCert, key: tls().clientKey }),
    byReference: false,
  },
  { name: 'inproc', listenAddress: 'inproc://', listenOptions: () => ({}), connectOptions: () => ({}), byReference: true },
];

/** Listens, connects once, and returns both ends. */
async function pair(t: Transport, extra: ListenOptions = {}, extraConnect: ConnectOptions = {}): Promise<{ client: Comm; server: Comm; address: string }> {
  let resolveServer!: (c: Comm) => void;
  const serverSide = new Promise<Comm>((r) => (resolveServer = r));
  const listener = res.listener(listen(t.listenAddress, (c) => resolveServer(res.comm(c)), { ...t.listenOptions(), ...extra }));
  await listener.start();
  const client = res.comm(await connect(listener.contactAddress, { timeout: 5000, ...t.connectOptions(), ...extraConnect }));
  const server = await serverSide;
  return { client, server, address: listener.contactAddress };
}

describe.each(transports)('$name transport', (t) => {
  test('listening on port 0 reports the real port', async () => {
    const listener = res.listener(listen(t.listenAddress, () => {}, t.listenOptions()));
    await listener.start();
    expect(listener.listenAddress.startsWith(`${t.name}://`)).toBe(true);
    if (t.name !== 'inproc') {
      const [, port] = getAddressHostPort(listener.listenAddress);
      expect(port).toBeGreaterThan(0);
      expect(listener.contactAddress).toBe(listener.listenAddress);
    }
  });

  test('round-trips messages with buffers both ways, in order', async () => {
    const { client, server } = await pair(t);
    const payload = Buffer.alloc(100_000, 7);
    const typed = new Float64Array([1.5, 2.5, -3]);
    await client.write({ op: 'data', payload, typed, nested: { list: [1, 'two', null], big: Buffer.from('xyz') } });
    await client.write({ op: 'second' });
    const got = (await server.read()) as { op: string; payload: Uint8Array; typed: Float64Array; nested: { list: unknown[]; big: Uint8Array } };
    expect(got.op).toBe('data');
    expect(Buffer.from(got.payload).equals(payload)).toBe(true);
    expect(Array.from(got.typed)).toEqual([1.5, 2.5, -3]);
    expect(got.nested.list).toEqual([1, 'two', null]);
    expect(Buffer.from(got.nested.big).toString()).toBe('xyz');
    expect(await server.read()).toEqual({ op: 'second' });
    await server.write({ reply: [1, 2, 3] });
    expect(await client.read()).toEqual({ reply: [1, 2, 3] });
    expect(client.peerAddress.startsWith(`${t.name}://`)).toBe(true);
    expect(client.localAddress.startsWith(`${t.name}://`)).toBe(true);
    if (t.byReference) {
      await client.write({ payload });
      expect(((await server.read()) as { payload: Buffer }).payload).toBe(payload);
    }
  });

  test('a large (16 MiB) message and many small ones survive backpressure', async () => {
    const { client, server } = await pair(t);
    const big = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const writes = [client.write({ big })];
    for (let i = 0; i < 200; i++) writes.push(client.write({ i }));
    const got = (await server.read()) as { big: Uint8Array };
    expect(got.big.byteLength).toBe(big.length);
    expect(Buffer.from(got.big).equals(big)).toBe(true);
    for (let i = 0; i < 200; i++) expect(await server.read()).toEqual({ i });
    await Promise.all(writes);
  });

  test('towards the connecting side (tcp: read straight into the reassembly buffer), large messages between small ones arrive whole', async () => {
    const { client, server } = await pair(t);
    const big = Buffer.alloc(24 * 1024 * 1024 + 3);
    for (let i = 0; i < big.length; i += 1000) big[i] = (i / 1000) % 251;
    const writes: Promise<void>[] = [];
    for (let round = 0; round < 3; round++) {
      writes.push(server.write({ round }));
      writes.push(server.write({ big, parts: [Buffer.alloc(70_000, round), 'x'] }));
    }
    writes.push(server.write({ done: true }));
    for (let round = 0; round < 3; round++) {
      expect(await client.read()).toEqual({ round });
      const got = (await client.read()) as { big: Uint8Array; parts: [Uint8Array, string] };
      expect(Buffer.from(got.big).equals(big)).toBe(true);
      expect(Buffer.from(got.parts[0]).equals(Buffer.alloc(70_000, round))).toBe(true);
      expect(got.parts[1]).toBe('x');
    }
    expect(await client.read()).toEqual({ done: true });
    await Promise.all(writes);
  });

  test('the default offer does not compress towards a peer on this host', async () => {
    const { client, server } = await pair(t);
    expect(client.peerInfo?.protocol).toBe(1);
    expect(client.peerInfo?.compression).toEqual(['lz4']);
    expect(client.compression).toBe(null);
    expect(server.compression).toBe(null);
  });

  test('compression is agreed in the handshake (explicit offers are honoured on this host too)', async () => {
    const { client, server } = await pair(t, { compression: ['lz4'] }, { compression: ['lz4'] });
    expect(client.peerInfo?.protocol).toBe(1);
    expect(server.compression).toBe(client.compression);
    expect(client.compression).toBe(t.byReference ? null : 'lz4');
    const compressible = Buffer.alloc(1 << 20, 'abc');
    await client.write({ compressible });
    expect(Buffer.from(((await server.read()) as { compressible: Uint8Array }).compressible).equals(compressible)).toBe(true);
  });

  test('a graceful close on one side: the other reads what was sent, then CommClosedError', async () => {
    const { client, server } = await pair(t);
    await server.write({ last: true });
    await server.close();
    expect(server.closed).toBe(true);
    expect(await client.read()).toEqual({ last: true });
    await expect(client.read()).rejects.toBeInstanceOf(CommClosedError);
    expect(client.closed).toBe(true);
    await expect(client.write({ x: 1 })).rejects.toBeInstanceOf(CommClosedError);
    await expect(server.write({ x: 1 })).rejects.toBeInstanceOf(CommClosedError);
    await expect(server.read()).rejects.toBeInstanceOf(CommClosedError);
  });

  test('abort rejects pending reads on both sides', async () => {
    const { client, server } = await pair(t);
    const pendingServerRead = server.read();
    const pendingClientRead = client.read();
    client.abort();
    await expect(pendingClientRead).rejects.toBeInstanceOf(CommClosedError);
    await expect(pendingServerRead).rejects.toBeInstanceOf(CommClosedError);
    await expect(client.write({})).rejects.toBeInstanceOf(CommClosedError);
    let closedWith: Error | undefined | null = null;
    server.onClose((e) => (closedWith = e));
    expect(closedWith).not.toBeNull();
  });
});

describe('tls mutual authentication', () => {
  const tlsListen = async (): Promise<string> => {
    const m = tls();
    const listener = res.listener(listen('tls://127.0.0.1:0', (c) => res.comm(c), { ca: m.ca, cert: m.serverCert, key: m.serverKey }));
    await listener.start();
    return listener.contactAddress;
  };

  test('connect() insists on a client certificate and key', async () => {
    const address = await tlsListen();
    const m = tls();
    await expect(connect(address, { timeout: 3000, ca: m.ca, cert: m.clientCert })).rejects.toThrow(/needs key/);
  });

  test('a client presenting no certificate is refused by the server with a TLS error', async () => {
    const address = await tlsListen();
    const [host, port] = getAddressHostPort(address);
    const socket = res.socket(tlsConnect({ host, port, ca: tls().ca, checkServerIdentity: () => undefined }));
    const decoder = new FrameDecoder();
    const reply = await new Promise<unknown>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        const msgs = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (msgs.length > 0) resolve(decodeMessage(msgs[0]!));
      });
      socket.on('error', reject);
    });
    expect(reply).toMatchObject({ op: 'handshake', refusedCode: 'DD_ERR_TLS' });
    expect((reply as { refused: string }).refused).toMatch(/certificate/);
  });

  test('a client certificate from another CA is rejected, quickly and without retries', async () => {
    const address = await tlsListen();
    const m = tls();
    const started = Date.now();
    const err = await connect(address, { timeout: 5000, ca: m.ca, cert: m.rogueCert, key: m.rogueKey }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DD_ERR_TLS' });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('a server certificate from another CA is rejected by the client', async () => {
    const m = tls();
    const listener = res.listener(listen('tls://127.0.0.1:0', (c) => res.comm(c), { ca: m.ca, cert: m.rogueCert, key: m.rogueKey }));
    await listener.start();
    const err = await connect(listener.contactAddress, { timeout: 3000, ca: m.ca, cert: m.clientCert, key: m.clientKey }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DD_ERR_TLS' });
  });

  // The peer address of a failed TLS negotiation must parse back (the Server throttles its
  // warnings by the peer's host): an IPv6 host needs brackets, tls://[::1]:port.
  test.each(['tls', 'wss'])('%s: a peer on IPv6 that does not speak TLS is reported as [::1]:port', async (scheme) => {
    const m = tls();
    const reported: Array<{ error: Error; peer: string }> = [];
    const listener = res.listener(listen(`${scheme}://[::1]:0`, (c) => res.comm(c), {
      ca: m.ca, cert: m.serverCert, key: m.serverKey,
      onHandshakeError: (error, peer) => reported.push({ error, peer }),
    }));
    try {
      await listener.start();
    } catch {
      return; // no IPv6 on this machine
    }
    const [, port] = getAddressHostPort(listener.listenAddress);
    const socket = res.socket(netConnect({ host: '::1', port }));
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const localPort = socket.localPort; // (undefined once the server has closed it)
    socket.write('GET / HTTP/1.1\r\n\r\n');
    await waitUntil(() => reported.length > 0, 'the TLS failure to be reported');
    expect(reported[0]!.error).toMatchObject({ code: 'DD_ERR_TLS' });
    expect(reported[0]!.peer).toBe(`${scheme}://[::1]:${localPort}`);
    expect(getAddressHostPort(reported[0]!.peer)).toEqual(['::1', localPort]);
  });

  test('wss rejects a client certificate from another CA', async () => {
    const m = tls();
    const listener = res.listener(listen('wss://127.0.0.1:0', (c) => res.comm(c), { ca: m.ca, cert: m.serverCert, key: m.serverKey }));
    await listener.start();
    const err = await connect(listener.contactAddress, { timeout: 3000, ca: m.ca, cert: m.rogueCert, key: m.rogueKey }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DD_ERR_TLS' });
    expect((err as Error).message).toMatch(/certificate/);
  });
});


describe('compressesTowards', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { compressesTowards } = require('../src/handshake') as typeof import('../src/handshake');
  test('default offer: lz4 towards another host, not towards this one', () => {
    expect(compressesTowards(undefined, ['lz4'], 'tcp://10.0.0.1:1', 'tcp://10.0.0.2:2')).toBe('lz4');
    expect(compressesTowards(undefined, ['lz4'], 'tcp://10.0.0.1:1', 'tcp://10.0.0.1:2')).toBe(null);
    expect(compressesTowards(undefined, ['lz4'], 'tcp://10.0.0.1:1', 'tcp://127.0.0.1:2')).toBe(null);
    expect(compressesTowards(undefined, ['lz4'], 'tcp://[::1]:1', 'tcp://[::1]:2')).toBe(null);
  });
  test('an explicit offer is honoured everywhere; no common codec, no compression', () => {
    expect(compressesTowards(['lz4'], ['lz4'], 'tcp://127.0.0.1:1', 'tcp://127.0.0.1:2')).toBe('lz4');
    expect(compressesTowards([], ['lz4'], 'tcp://10.0.0.1:1', 'tcp://10.0.0.2:2')).toBe(null);
    expect(compressesTowards(undefined, [], 'tcp://10.0.0.1:1', 'tcp://10.0.0.2:2')).toBe(null);
  });
});

describe('inproc with two copies of the module', () => {
  // An application may load @dd/comm twice (two installs): a LocalCluster's scheduler listening
  // through one copy must be reachable, at its inproc:// address, through the other.
  test('a listener of one copy accepts a connection made through the other; addresses stay distinct', async () => {
    type Inproc = typeof import('../src/transports/inproc');
    let a!: Inproc;
    let b!: Inproc;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      a = require('../src/transports/inproc') as Inproc;
    });
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      b = require('../src/transports/inproc') as Inproc;
    });
    expect(a.inprocBackend).not.toBe(b.inprocBackend);
    const accepted: unknown[] = [];
    const la = a.inprocBackend.createListener('', (comm) => accepted.push(comm), {});
    const lb = b.inprocBackend.createListener('', () => {}, {});
    await la.start();
    await lb.start();
    try {
      expect(la.contactAddress).not.toBe(lb.contactAddress);
      const comm = await b.inprocBackend.connect(la.contactAddress.slice('inproc://'.length), { attemptTimeout: 1000 });
      await new Promise((r) => setImmediate(r));
      expect(accepted).toHaveLength(1);
      comm.abort();
    } finally {
      await la.stop();
      await lb.stop();
    }
  });
});
