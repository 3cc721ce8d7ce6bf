// client.restart() on a LocalCluster: fresh worker processes (or Worker objects), every future
// cancelled with a reason that says so, new work runs afterwards.

import { silentLogger } from '@dd/comm';
import { Scheduler } from '@dd/scheduler';
import { Client, LocalCluster } from '../src/index';
import { spin } from '../../../tools/testing/processes';

jest.setTimeout(60_000);

describe('client.restart() on a LocalCluster', () => {
  test('processes: true restarts the worker processes; old futures are cancelled with a clear error', async () => {
    const cluster = await LocalCluster.start({ nWorkers: 2, threadsPerWorker: 1, processes: true });
    const client = await Client.connect(cluster);
    const other = await Client.connect(cluster);
    try {
      const pidsBefore = cluster.pids.sort();
      const addressesBefore = cluster.workers.map((w) => w.address).sort();
      const done = client.submit((x: number) => x + 1, 1);
      expect(await done).toBe(2);
      const [data] = client.scatter([[1, 2, 3]]) as unknown as [ReturnType<Client['submit']>];
      await data!.result();
      const running = client.options({ pure: false }).submit(spin, 30_000);
      const others = other.submit((x: number) => x * 10, 4);
      expect(await others).toBe(40);
      const runningOutcome = running.result().then(() => 'resolved', (e: Error) => e);

      const t0 = Date.now();
      const reply = await client.restart({ timeout: 30_000 });
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(reply.notRestarted).toEqual([]);
      const outcomes = [await runningOutcome, ...(await Promise.all([done, data!, others].map((f) => f.result().then(() => 'resolved', (e: Error) => e))))];
      for (const r of outcomes) {
        expect(r).toBeInstanceOf(Error);
        expect((r as Error).message).toMatch(/cancelled: the cluster was restarted \(client\.restart\(\)\)/);
      }
      expect(done.status).toBe('cancelled');
      const pidsAfter = cluster.pids.sort();
      expect(pidsAfter).toHaveLength(2);
      for (const pid of pidsAfter) expect(pidsBefore).not.toContain(pid);
      expect(Object.keys(await client.nthreads()).sort()).toEqual(cluster.workers.map((w) => w.address).sort());
      expect(cluster.workers.map((w) => w.address).sort()).not.toEqual(addressesBefore);
      expect(cluster.scheduler.state.tasks.size).toBe(0);
      // New work (even the same key) runs on the fresh workers.
      expect(await client.submit((x: number) => x + 1, 1)).toBe(2);
      expect(await other.submit(() => process.pid)).not.toBe(process.pid);
    } finally {
      await other.close();
      await client.close();
      await cluster.close();
    }
    expect(cluster.pids).toEqual([]);
  });

  test('processes: false replaces the in-process workers', async () => {
    const cluster = await LocalCluster.start({ nWorkers: 1, threadsPerWorker: 1, processes: false });
    const client = await Client.connect(cluster);
    try {
      const before = cluster.workers[0]!.worker!;
      const f = client.submit((x: number) => x + 1, 41);
      expect(await f).toBe(42);
      await client.restart({ timeout: 20_000 });
      await expect(f.result()).rejects.toThrow(/restarted/);
      expect(cluster.workers[0]!.worker).not.toBe(before);
      expect(await client.submit((x: number) => x + 1, 41)).toBe(42);
    } finally {
      await client.close();
      await cluster.close();
    }
  });

  test.each([['inproc://'], ['tcp://127.0.0.1:0']])('restart right after a large map cancels all of it, also what the scheduler has not placed yet (%s)', async (address) => {
    // A map of more than 2 000 tasks is placed in slices; restart must see every one of them.
    const scheduler = await Scheduler.create({ address, validate: true, logger: silentLogger });
    const client = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
    try {
      const xs = client.map((x: number) => x + 1, Array.from({ length: 3000 }, (_, i) => i));
      const outcomes = Promise.all(xs.map((f) => f.result().then(() => 'resolved', () => 'cancelled')));
      await client.restart({ timeout: 5_000 });
      expect(new Set(await outcomes)).toEqual(new Set(['cancelled']));
      expect(scheduler.state.tasks.size).toBe(0);
      expect(scheduler.state.clients.get(client.id)?.wantsWhat.size ?? 0).toBe(0);
    } finally {
      await client.close();
      await scheduler.close();
    }
  });
});
