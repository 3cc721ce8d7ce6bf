// A tls:// cluster of the real binaries: dd-scheduler and dd-worker with certificates of one CA,
// a client with its own certificate; tasks, a transfer between workers and a direct gather all
// go over TLS, and so does the scheduler's restart request to the nanny. Missing or partial TLS
// options are clear errors.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@dd/client';
import { makeTlsMaterial } from '../../../packages/comm/test/helpers';
import { binaries, childPids, killAll, startProcess, startScheduler } from '../../../tools/testing/processes';

jest.setTimeout(60_000);

describe('dd-worker with a tls:// scheduler', () => {
  let dir: string;
  let client: Client | undefined;
  beforeAll(() => {
    const tls = makeTlsMaterial();
    dir = mkdtempSync(join(tmpdir(), 'dd-tls-'));
    for (const [name, text] of Object.entries({ 'ca.pem': tls.ca, 'server.pem': tls.serverCert, 'server.key': tls.serverKey })) writeFileSync(join(dir, name), text);
  });
  afterEach(async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    await killAll();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const files = () => ['--tls-ca-file', join(dir, 'ca.pem'), '--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server.key')];

  test('workers register, compute, and exchange data over TLS; the client gathers from them directly', async () => {
    const scheduler = await startScheduler('--protocol', 'tls', ...files());
    expect(scheduler).toMatch(/^tls:\/\//);
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--no-dashboard', ...files()]);
    const lines = await w.waitForLines(/^Worker at: /, 2, 30_000);
    for (const l of lines) expect(l).toMatch(/^Worker at: tls:\/\//);

    const tls = makeTlsMaterial();
    client = await Client.connect(scheduler, { comm: { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey }, heartbeatIntervalMs: 0 });
    await client.waitForWorkers(2, { timeout: 20_000 });
    const [a, b] = Object.keys((await client.schedulerInfo()).workers);
    const x = client.options({ workers: [a!], pure: false }).submit((n: number) => 'x'.repeat(n), 100_000);
    const length = client.options({ workers: [b!], pure: false }).submit((s: string) => s.length, x);
    expect(await length).toBe(100_000);
    expect((await client.gather(x, { direct: true })).length).toBe(100_000);
    expect(await client.gather(client.map((n: number) => n * 2, [1, 2, 3]))).toEqual([2, 4, 6]);

    // The private key reaches the worker processes through their environment, which only their
    // owner can read, not the command line, which every user can; and tasks do not see it.
    for (const pid of childPids(w.child.pid!)) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toMatch(/PRIVATE KEY/);
    expect(await client.options({ pure: false }).submit(() => process.env['DD_WORKER_OPTIONS'] === undefined)).toBe(true);

    // The nanny serves over TLS too, and the scheduler reaches it there for a restart.
    expect(await w.waitForLine(/^Nanny at: /)).toMatch(/^Nanny at: tls:\/\//);
    const reply = await client.restart({ timeout: 30_000 });
    expect(reply.workers).toHaveLength(2);
    expect(reply.notRestarted).toEqual([]);
    expect(await client.submit((n: number) => n + 1, 41)).toBe(42);
  });

  test('a worker without certificates, or with only some, is refused with a clear error', async () => {
    const scheduler = await startScheduler('--protocol', 'tls', ...files());
    const none = startProcess(binaries.worker, [scheduler, '--no-nanny']);
    expect((await none.exited).code).not.toBe(0);
    expect(none.lines.join('\n')).toMatch(/a tls:\/\/ scheduler needs --tls-ca-file, --tls-cert and --tls-key/);
    const some = startProcess(binaries.worker, [scheduler, '--no-nanny', '--tls-ca-file', join(dir, 'ca.pem')]);
    expect((await some.exited).code).not.toBe(0);
    expect(some.lines.join('\n')).toMatch(/TLS needs all three/);
  });
});
