// Shared test helpers: TLS material generated with openssl into a temp dir (removed at once),
// raw socket access for feeding bad input, and a resource tracker so every test closes what it
// opened.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMessage, packFrames } from '@dd/protocol';
import { getAddressHostPort, type Comm, type ConnectionPool, type Listener, type Server } from '../src/index';

export interface TlsMaterial {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A certificate/key pair signed by another CA (must be rejected). */
  rogueCert: string;
  rogueKey: string;
}

let cachedTls: TlsMaterial | undefined;

/** A CA with a server and a client certificate (EC P-256, quick to make). */
export function makeTlsMaterial(): TlsMaterial {
  if (cachedTls !== undefined) return cachedTls;
  const dir = mkdtempSync(join(tmpdir(), 'dd-comm-tls-'));
  try {
    const run = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    };
    const makeCa = (name: string): void =>
      run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.pem`);
    const makeLeaf = (name: string, ca: string): void => {
      run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`,
        '-keyout', `${name}.key`, '-out', `${name}.csr`);
      run('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
        '-days', '2', '-out', `${name}.pem`);
    };
    makeCa('ca');
    makeCa('rogue-ca');
    makeLeaf('server', 'ca');
    makeLeaf('client', 'ca');
    makeLeaf('rogue', 'rogue-ca');
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
    cachedTls = {
      ca: read('ca.pem'),
      serverCert: read('server.pem'),
      serverKey: read('server.key'),
      clientCert: read('client.pem'),
      clientKey: read('client.key'),
      rogueCert: read('rogue.pem'),
      rogueKey: read('rogue.key'),
    };
    return cachedTls;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Everything a test opened, closed in afterEach. */
export class Resources {
  private closers: Array<() => unknown> = [];

  comm<T extends Comm>(c: T): T {
    this.closers.push(() => c.abort());
    return c;
  }
  server<T extends Server>(s: T): T {
    this.closers.push(() => s.close());
    return s;
  }
  listener<T extends Listener>(l: T): T {
    this.closers.push(() => l.stop());
    return l;
  }
  pool<T extends { close(): Promise<void> }>(p: T): T {
    this.closers.push(() => p.close());
    return p;
  }
  socket(s: Socket): Socket {
    this.closers.push(() => s.destroy());
    return s;
  }
  add(fn: () => unknown): void {
    this.closers.push(fn);
  }

  async closeAll(): Promise<void> {
    const closers = this.closers.reverse();
    this.closers = [];
    for (const c of closers) {
      try {
        await c();
      } catch {
        // best effort
      }
    }
  }
}

/** Raw TCP socket to a dd address, for writing arbitrary bytes. */
export function rawConnect(address: string, res: Resources): Promise<Socket> {
  const [host, port] = getAddressHostPort(address);
  return new Promise((resolve, reject) => {
    const s = res.socket(netConnect({ host, port }));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** The bytes of one dd message as a peer without compression would send it. */
export function packed(msg: unknown): Buffer {
  const bytes = packFrames(encodeMessage(msg));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export const HANDSHAKE = { op: 'handshake', versions: { protocol: 1, dd: '0.1.0' }, compression: [] as string[] };

/** Resolves when the socket is closed by the peer (or rejects after ms). */
export function waitForClose(socket: Socket, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error(`socket not closed within ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => {});
    socket.resume();
  });
}

export type { ConnectionPool };

/** Resolves once `condition()` holds (polled every 5 ms); rejects naming `what` after ms. */
export async function waitUntil(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
