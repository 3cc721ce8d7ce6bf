// LocalCluster with worker processes: start, compute, stop, and no process left behind.
// Worker processes run @dd/worker's dist/, so the packages must be built first
// (`npm test` does; or `npx turbo run build --filter=@dd/client...`).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client, LocalCluster } from '../src/index';

jest.setTimeout(60_000);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function allGone(pids: number[], timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const entry = join(dirname(require.resolve('@dd/worker/package.json')), 'dist', 'process-main.js');

describe('LocalCluster', () => {
  beforeAll(() => {
    if (!existsSync(entry)) throw new Error(`${entry} is missing: build first (npx turbo run build --filter=@dd/client...)`);
  });

  test('processes: start, compute, close leaves no process behind', async () => {
    const cluster = await LocalCluster.start({ nWorkers: 2, threadsPerWorker: 1, processes: true });
    const pids = cluster.pids;
    try {
      expect(pids).toHaveLength(2);
      expect(pids.every(alive)).toBe(true);
      expect(cluster.workers.map((w) => w.pid)).toEqual(pids);
      const client = await Client.connect(cluster);
      try {
        await client.waitForWorkers(2, { timeout: 10_000 });
        expect(Object.keys(await client.nthreads()).sort()).toEqual(cluster.workers.map((w) => w.address).sort());
        const xs = client.map((x: number) => x * 2, [1, 2, 3, 4]);
        expect(await client.gather(xs)).toEqual([2, 4, 6, 8]);
        expect(await client.submit(() => process.pid)).not.toBe(process.pid);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
      await cluster.close(); // idempotent
    }
    expect(await allGone(pids)).toBe(true);
    expect(cluster.pids).toEqual([]);
  });

  test('Client.connect() with no address owns a LocalCluster and stops it on close', async () => {
    const client = await Client.connect(undefined, { cluster: { nWorkers: 1, threadsPerWorker: 1 } });
    const cluster = client.cluster!;
    expect(cluster).toBeInstanceOf(LocalCluster);
    const pids = cluster.pids;
    expect(pids).toHaveLength(1);
    expect(await client.submit((a: number, b: number) => a + b, 1, 2)).toBe(3);
    await client.close();
    expect(await allGone(pids)).toBe(true);
  });

  test('a worker process killed from outside does not hang close()', async () => {
    const cluster = await LocalCluster.start({ nWorkers: 2, threadsPerWorker: 1 });
    const pids = cluster.pids;
    process.kill(pids[0]!, 'SIGKILL');
    await cluster.close();
    expect(await allGone(pids)).toBe(true);
  });

  test('processes: false runs workers in this process', async () => {
    await using cluster = await LocalCluster.start({ nWorkers: 2, threadsPerWorker: 1, processes: false });
    expect(cluster.pids).toEqual([]);
    expect(cluster.workers.every((w) => w.worker !== undefined)).toBe(true);
    await using client = await Client.connect(cluster);
    expect(await client.gather(client.map((x: number) => x + 1, [1, 2, 3]))).toEqual([2, 3, 4]);
  });

  test('a client in the same process reaches the scheduler in-process; others use its network address', async () => {
    await using cluster = await LocalCluster.start({ nWorkers: 1, threadsPerWorker: 1 });
    expect(cluster.localSchedulerAddress).toMatch(/^inproc:\/\//);
    expect(cluster.schedulerAddress).toMatch(/^tcp:\/\//);
    // The local address is what connects: the network address given here leads nowhere.
    const nowhere = 'tcp://127.0.0.1:1';
    await using local = await Client.connect({ schedulerAddress: nowhere, localSchedulerAddress: cluster.localSchedulerAddress }, { timeout: 5000 });
    expect(local.schedulerAddress).toBe(nowhere);
    await using viaCluster = await Client.connect(cluster);
    expect(viaCluster.schedulerAddress).toBe(cluster.schedulerAddress);
    await using remote = await Client.connect(cluster.schedulerAddress);
    // All three share one scheduler: data published over one connection is seen over the others.
    const x = local.submit((a: number) => a * 10, 4);
    expect(await x).toBe(40);
    await local.publishDataset({ x });
    // (a published Future is thenable: awaiting getDataset yields its value)
    expect(await viaCluster.getDataset('x')).toBe(40);
    expect(await remote.getDataset('x')).toBe(40);
    expect(String(viaCluster)).toContain(cluster.schedulerAddress);
  });
});
