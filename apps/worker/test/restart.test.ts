// client.restart() with the real binaries: dd-worker's nanny is told by the scheduler to start
// fresh worker processes; every future is cancelled with a reason; new work runs. A worker run
// with --no-nanny cannot be restarted: it is emptied and reported in notRestarted.

import { Client } from '@dd/client';
import { binaries, childPids, isAlive, killAll, startProcess, waitUntil, startScheduler, spin } from '../../../tools/testing/processes';

jest.setTimeout(90_000);

describe('client.restart() with dd-worker', () => {
  let client: Client | undefined;
  afterEach(async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    await killAll();
  });

  test('the nanny restarts its worker processes; old futures are cancelled with a clear error; new work runs', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--no-dashboard']);
    await w.waitForLine(/^Nanny at: /, 30_000);
    await w.waitForLines(/^Worker at: /, 2, 30_000);
    client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
    await client.waitForWorkers(2, { timeout: 20_000 });
    const pidsBefore = childPids(w.child.pid!).sort();
    expect(pidsBefore).toHaveLength(2);
    expect(Object.keys((await client.schedulerInfo()).workers)).toHaveLength(2);

    const done = client.submit((x: number) => x + 1, 1);
    expect(await done).toBe(2);
    const [data] = client.scatter([{ big: 'x'.repeat(1000) }]) as unknown as [typeof done];
    await data!.result();
    const running = client.options({ pure: false }).submit(spin, 30_000);
    const runningOutcome = running.result().then(() => 'resolved', (e: Error) => e);

    const t0 = Date.now();
    const reply = await client.restart({ timeout: 60_000 });
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(reply.workers).toHaveLength(2);
    expect(reply.notRestarted).toEqual([]);
    for (const f of [done, data!]) await expect(f.result()).rejects.toThrow(/cancelled: the cluster was restarted \(client\.restart\(\)\)/);
    expect(await runningOutcome).toBeInstanceOf(Error);
    expect(((await runningOutcome) as Error).message).toMatch(/the cluster was restarted/);
    for (const pid of pidsBefore) expect(isAlive(pid)).toBe(false);
    const pidsAfter = childPids(w.child.pid!);
    expect(pidsAfter).toHaveLength(2);
    for (const pid of pidsAfter) expect(pidsBefore).not.toContain(pid);
    const workersAfter = Object.keys((await client.schedulerInfo()).workers).sort();
    expect(workersAfter).toEqual([...reply.workers].sort());
    // Fresh processes, told apart by pid above: not by address, since the kernel may give a new
    // worker the port an old one just freed.
    // A restart is not a death.
    expect(w.lines.some((l) => /died with/.test(l))).toBe(false);

    expect(await client.submit((x: number) => x + 1, 1)).toBe(2);
    expect(await client.gather(client.map((x: number) => x * 2, [1, 2, 3]))).toEqual([2, 4, 6]);
  });

  test('a worker without a nanny is emptied and reported as not restarted', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--no-nanny', '--nthreads', '1', '--no-dashboard']);
    const address = (await w.waitForLine(/^Worker at: /, 30_000)).replace('Worker at: ', '');
    client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
    await client.waitForWorkers(1, { timeout: 20_000 });
    const f = client.submit((x: number) => x + 1, 1);
    expect(await f).toBe(2);
    const reply = await client.restart({ timeout: 20_000 });
    expect(reply.notRestarted).toEqual([address]);
    await expect(f.result()).rejects.toThrow(/the cluster was restarted/);
    await waitUntil(async () => (await client!.hasWhat())[address]?.length === 0, 5_000, 'the worker emptied');
    expect(await client.submit((x: number) => x + 1, 1)).toBe(2);
  });

  test('a worker process the scheduler retires stays closed; once the scheduler shuts down every worker, dd-worker exits 0', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--no-dashboard']);
    await w.waitForLines(/^Worker at: /, 2, 30_000);
    client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
    await client.waitForWorkers(2, { timeout: 20_000 });
    const [retired, kept] = Object.keys((await client.schedulerInfo()).workers);
    await client.retireWorkers([retired!]);
    await w.waitForLine(/closed \(the scheduler closed or retired it.*not restarting it/, 20_000);
    await waitUntil(async () => childPids(w.child.pid!).length === 1, 10_000, 'one worker process left');
    expect(Object.keys((await client.schedulerInfo()).workers)).toEqual([kept]);
    expect(w.lines.some((l) => /restarting in/.test(l))).toBe(false);

    await client.shutdown();
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([w.exited, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), 20_000); })]);
    clearTimeout(timer);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
