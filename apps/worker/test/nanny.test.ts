// The nanny of dd-worker (real binaries): it restarts a worker whose memory exceeds the
// terminate fraction of its limit, saying why, and serves `restart` over rpc.

import { rpc } from '@dd/comm';
import { Client } from '@dd/client';
import { binaries, childPids, isAlive, killAll, startProcess, waitUntil, startScheduler, workerAddresses, exitReport } from '../../../tools/testing/processes';

jest.setTimeout(90_000);

async function call<T>(address: string, op: string, args: Record<string, unknown> = {}): Promise<T> {
  const r = rpc(address);
  try {
    return await r.call<T>(op, args, { timeout: 60_000 });
  } finally {
    await r.close();
  }
}

describe('nanny', () => {
  let client: Client | undefined;
  afterEach(async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    await killAll();
  });

  test('a worker process over the terminate fraction of its memory limit is killed, with the reason, and restarted', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nthreads', '1', '--memory-limit', '300MB', '--no-dashboard']);
    await w.waitForLine(/^Worker at: /, 30_000);
    const [first] = childPids(w.child.pid!);
    client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
    // Holds 400 MB (filled, so resident) for long enough to be seen.
    const hog = (n: number) => {
      const b = Buffer.alloc(n, 1);
      const until = Date.now() + 30_000;
      while (Date.now() < until) b[0] = (b[0]! + 1) & 0xff;
      return b.length;
    };
    const hogging = client.options({ pure: false }).submit(hog, 400e6);
    void hogging.then(() => undefined, () => undefined);
    const line = await w.waitForLine(/exceeded 95% of its memory limit/, 60_000);
    // Otherwise the scheduler reruns the task on the replacement, which is then killed in turn
    // (the nanny waits 500 ms before a restart: the cancel gets there first).
    await client.cancel([hogging]);
    expect(line).toMatch(/Worker process 0 \(tcp:\/\/.+\) exceeded 95% of its memory limit \(RSS \d+ MiB of 286 MiB\); terminating and restarting it/);
    await w.waitForLine(/was terminated: it exceeded 95%.*restarting in \d+ ms/, 10_000);
    await w.waitForLines(/^Worker at: /, 2, 30_000);
    expect(isAlive(first!)).toBe(false);
    expect(childPids(w.child.pid!)).toHaveLength(1);
  });

  test('a worker process over its memory limit before it registered is not restarted: dd-worker exits 1 saying why', async () => {
    const scheduler = await startScheduler();
    // A bare worker process uses ~50 MB: this limit cannot hold one.
    const w = startProcess(binaries.worker, [scheduler, '--nthreads', '1', '--memory-limit', '20MB', '--no-dashboard']);
    await w.waitForLine(/could not start: it exceeded 95% of its memory limit .* before registering with the scheduler; .*raise --memory-limit; not restarting it/, 30_000);
    const exit = await Promise.race([exitReport(w), new Promise<string>((r) => setTimeout(() => r('still running after 15 s'), 15_000).unref())]);
    expect(exit).toMatchObject({ code: 1 });
    expect(w.lines.filter((l) => /Restarting|restarting in/.test(l))).toEqual([]);
  });

  test('restart over rpc replaces every worker process with a fresh one that registers', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--no-dashboard']);
    const nanny = (await w.waitForLine(/^Nanny at: /, 30_000)).replace('Nanny at: ', '');
    await w.waitForLines(/^Worker at: /, 2, 30_000);
    await waitUntil(async () => (await workerAddresses(scheduler)).length === 2, 20_000, 'two workers');
    const before = await workerAddresses(scheduler);
    const pidsBefore = childPids(w.child.pid!).sort();
    const ident = await call<{ type: string; workers: Array<{ pid: number; address: string }> }>(nanny, 'identity');
    expect(ident.type).toBe('nanny');
    expect(ident.workers.map((x) => x.address).sort()).toEqual(before);

    const reply = await call<{ status: string; workers: string[] }>(nanny, 'restart');
    expect(reply.status).toBe('OK');
    expect(reply.workers).toHaveLength(2);
    // Fresh processes. Not fresh addresses: the kernel may hand a new worker the port an old one
    // just freed (CI saw it), so the processes are told apart by pid.
    for (const pid of pidsBefore) expect(isAlive(pid)).toBe(false);
    const after = await call<{ workers: Array<{ pid: number; address: string }> }>(nanny, 'identity');
    expect(after.workers.map((x) => x.address).sort()).toEqual([...reply.workers].sort());
    for (const x of after.workers) expect(pidsBefore).not.toContain(x.pid);
    await waitUntil(async () => JSON.stringify(await workerAddresses(scheduler)) === JSON.stringify([...reply.workers].sort()), 20_000, 'the new workers registered, the old ones gone');
    // A clean restart is not a death.
    expect(w.lines.some((l) => /died with/.test(l))).toBe(false);

    // One worker by address.
    const one = await call<{ status: string; workers: string[] }>(nanny, 'restart', { workers: [reply.workers[0]] });
    expect(one.workers).toHaveLength(1);
    await waitUntil(async () => (await workerAddresses(scheduler)).includes(one.workers[0]!), 20_000, 'the restarted worker');

    w.child.kill('SIGTERM');
    expect(await exitReport(w)).toEqual({ code: 0, signal: null });
  });
});
