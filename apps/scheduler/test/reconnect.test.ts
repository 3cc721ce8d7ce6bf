// A scheduler that restarts at the same address (real binaries): the worker registers again, the
// client reconnects on its own; futures of before are lost with a clear error, new work computes.

import { Client } from '@dd/client';
import { binaries, killAll, startProcess, waitUntil, freePort, spin } from '../../../tools/testing/processes';

jest.setTimeout(90_000);

describe('scheduler restart at the same address', () => {
  let client: Client | undefined;
  afterEach(async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    await killAll();
  });

  test('the worker re-registers, the client reconnects, old futures error clearly, new submissions compute', async () => {
    const port = await freePort();
    const args = ['--host', '127.0.0.1', '--port', String(port), '--no-dashboard'];
    const first = startProcess(binaries.scheduler, args);
    const address = (await first.waitForLine(/^Scheduler at: /, 30_000)).replace('Scheduler at: ', '');
    const w = startProcess(binaries.worker, [address, '--nthreads', '2', '--no-dashboard', '--death-timeout', '60s']);
    await w.waitForLine(/^Worker at: /, 30_000);
    client = await Client.connect(address, { heartbeatIntervalMs: 0, reconnectTimeout: 30_000 });
    await client.waitForWorkers(1, { timeout: 20_000 });
    const idBefore = client.schedulerId;

    const done = client.submit((x: number) => x + 1, 1);
    expect(await done).toBe(2);
    const running = client.options({ pure: false }).submit(spin, 3_000);
    const runningOutcome = running.result().then(() => 'resolved', (e: Error) => e);
    await new Promise((r) => setTimeout(r, 300));

    first.child.kill('SIGKILL');
    await first.exited;
    const outcome = await runningOutcome;
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/lost the connection to the scheduler .*its computations are gone/);
    await expect(done.result()).rejects.toThrow(/lost the connection to the scheduler/);
    expect(client.connected).toBe(false);
    // Submitted while the scheduler is away: waits for the new connection.
    const meanwhile = client.submit((x: number) => x * 3, 7);

    const second = startProcess(binaries.scheduler, args);
    expect((await second.waitForLine(/^Scheduler at: /, 30_000)).replace('Scheduler at: ', '')).toBe(address);
    await waitUntil(() => client!.connected, 20_000, 'the client reconnected');
    expect(client.schedulerId).not.toBe(idBefore);
    await client.waitForWorkers(1, { timeout: 30_000 });

    expect(await meanwhile).toBe(21);
    expect(await client.submit((x: number) => x + 1, 1)).toBe(2);
    expect(await client.gather(client.map((x: number) => x * 2, [1, 2, 3]))).toEqual([2, 4, 6]);
  });

  test('the client gives up after reconnectTimeout: futures lost, the client closed', async () => {
    const port = await freePort();
    const s = startProcess(binaries.scheduler, ['--host', '127.0.0.1', '--port', String(port), '--no-dashboard']);
    const address = (await s.waitForLine(/^Scheduler at: /, 30_000)).replace('Scheduler at: ', '');
    client = await Client.connect(address, { heartbeatIntervalMs: 0, reconnectTimeout: 1_000 });
    s.child.kill('SIGKILL');
    await s.exited;
    await new Promise((r) => setTimeout(r, 50));
    const queued = client.submit((x: number) => x + 1, 1);
    await waitUntil(() => client!.status === 'closed', 10_000, 'the client gave up');
    await expect(queued.result()).rejects.toThrow(/could not reconnect to the scheduler at .* within 1000 ms/);
    expect(() => client!.submit((x: number) => x + 1, 2)).toThrow(/could not reconnect/);
  });
});
