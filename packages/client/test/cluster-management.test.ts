// Managing a cluster end to end: run, versions, the task stream, shutdown.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '@dd/comm';
import { Scheduler } from '@dd/scheduler';
import { Client, ClientClosedError, RemoteError, SchedulerFileError, VersionMismatchError, ref } from '../src/index';
import { startTestWorker, withCluster } from './harness';
import { inc } from './task-functions';

jest.setTimeout(60_000);

const inline = { executor: 'inline' as const };

describe('run', () => {
  test('calls a function on every worker (by source, with args; the Worker as this); a module ref; workers by name', async () => {
    await withCluster({ workers: [{ ...inline, name: 'alice' }, { ...inline, name: 'bob' }] }, async ({ client, workers }) => {
      const addresses = workers.map((w) => w.address).sort();
      const pids = await client.run(() => process.pid);
      expect(Object.keys(pids).sort()).toEqual(addresses);
      for (const pid of Object.values(pids)) expect(pid).toBe(process.pid);

      const who = await client.run(function (this: { address: string; name: string }, suffix: string) {
        return `${this.name}@${this.address}${suffix}`;
      }, '!');
      for (const w of workers) expect(who[w.address]).toBe(`${w.name}@${w.address}!`);

      const asyncSum = await client.run(async (a: number, b: number) => {
        await new Promise((r) => setTimeout(r, 5));
        return { sum: a + b };
      }, 2, 3);
      expect(Object.values(asyncSum)).toEqual([{ sum: 5 }, { sum: 5 }]);

      const byRef = await client.run(ref<(x: number) => number>(path.join(__dirname, 'fixtures', 'tasks.js'), 'inc'), 41);
      expect(Object.values(byRef)).toEqual([42, 42]);

      const onBob = await client.run({ workers: ['bob'] }, (x: number) => x * 2, 21);
      expect(onBob).toEqual({ [workers[1]!.address]: 42 });
      await expect(client.run({ workers: ['nobody'] }, () => 1)).rejects.toThrow(/no worker "nobody"/);
      await expect(client.run((_x: unknown) => 1, client.submit(inc, 1) as unknown)).rejects.toThrow(/cannot be Futures/);
    });
  });

  test('errors: raise (RemoteError naming the worker), return, ignore; closures explained', async () => {
    await withCluster({ workers: [{ ...inline, name: 'a' }, { ...inline, name: 'b' }] }, async ({ client, workers }) => {
      const [a, b] = workers.map((w) => w.address) as [string, string];
      const failOnA = function (this: { name: string }) {
        if (this.name === 'a') throw new RangeError('no luck here');
        return 'fine';
      };
      const raised = await client.run(failOnA).catch((e: unknown) => e);
      expect(raised).toBeInstanceOf(RemoteError);
      expect((raised as RemoteError).remoteName).toBe('RangeError');
      expect((raised as RemoteError).address).toBe(a);
      expect((raised as RemoteError).message).toContain('no luck here');

      const returned = await client.run({ onError: 'return' }, failOnA);
      expect(returned[b]).toBe('fine');
      expect(returned[a]).toBeInstanceOf(RemoteError);
      expect(await client.run({ onError: 'ignore' }, failOnA)).toEqual({ [b]: 'fine' });

      const outer = 5;
      const closure = await client.run(() => outer + 1).catch((e: unknown) => e);
      expect((closure as RemoteError).message).toMatch(/outer/);
      expect((closure as RemoteError).message).toMatch(/enclosing scope|closure|argument/i);

      // The workers still compute afterwards.
      expect(await client.submit(inc, 1)).toBe(2);
    });
  });
});

describe('versions and the task stream', () => {
  test('getVersions lists the scheduler, each worker and the client; check passes on one install', async () => {
    await withCluster({ workers: [inline, inline] }, async ({ client, workers }) => {
      const v = await client.getVersions({ check: true });
      expect(v.scheduler['dd']).toMatch(/^\d+\.\d+\.\d+/);
      expect(v.client['node']).toBe(process.versions.node);
      expect(Object.keys(v.workers).sort()).toEqual(workers.map((w) => w.address).sort());
      for (const w of Object.values(v.workers)) expect((w as Record<string, string>)['node']).toBe(process.versions.node);
      expect(new VersionMismatchError('x').code).toBe('DD_ERR_VERSION_MISMATCH');
    });
  });

  test('getTaskStream: start/stop per task and worker, errors included, filtered by time and count', async () => {
    await withCluster({ workers: [inline, inline] }, async ({ client, workers }) => {
      const before = Date.now();
      const xs = client.map(inc, [1, 2, 3, 4, 5, 6]);
      await client.gather(xs);
      const bad = client.submit((x: number) => {
        throw new Error(`bad ${x}`);
      }, 1);
      await expect(bad).rejects.toThrow(/bad 1/);
      const all = await client.getTaskStream();
      const addresses = new Set(workers.map((w) => w.address));
      for (const f of xs) {
        const r = all.find((t) => t.key === f.key);
        expect(r).toBeDefined();
        expect(r!.status).toBe('OK');
        expect(addresses.has(r!.worker)).toBe(true);
        const compute = r!.startstops.find((s) => s.action === 'compute');
        expect(compute).toBeDefined();
        expect(compute!.start).toBeLessThanOrEqual(compute!.stop);
        expect(compute!.start).toBeGreaterThanOrEqual(before - 1000);
      }
      const erred = all.find((t) => t.key === bad.key);
      expect(erred?.status).toBe('error');
      expect(await client.getTaskStream({ count: 2 })).toEqual(all.slice(-2));
      expect(await client.getTaskStream({ start: Date.now() + 60_000 })).toEqual([]);
      expect((await client.getTaskStream({ start: new Date(before) })).length).toBe(all.length);
    });
  });
});

describe('shutdown', () => {
  test('closes the workers, the scheduler and the client', async () => {
    const scheduler = await Scheduler.start({ address: 'tcp://127.0.0.1:0', validate: true });
    const workers = await Promise.all([startTestWorker(scheduler, inline), startTestWorker(scheduler, inline)]);
    const client = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
    try {
      expect(await client.submit(inc, 1)).toBe(2);
      await client.shutdown();
      await Promise.race([
        Promise.all([scheduler.closed, ...workers.map((w) => w.closed)]),
        new Promise((_, reject) => setTimeout(() => reject(new Error('not closed within 10 s')), 10_000).unref()),
      ]);
      expect(workers.map((w) => w.status)).toEqual(['closed', 'closed']);
      expect(client.status).toBe('closed');
    } finally {
      await client.close();
      await Promise.all(workers.map((w) => w.close()));
      await scheduler.close();
    }
  });
});

describe('scheduler files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dd-schedfile-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('writeSchedulerFile writes the identity another client connects through; one file per client', async () => {
    await withCluster({ transport: 'tcp', workers: [inline] }, async ({ client, scheduler }) => {
      const file = path.join(dir, 'scheduler.json');
      expect(client.schedulerFile).toBeUndefined();
      await client.writeSchedulerFile(file);
      expect(client.schedulerFile).toBe(file);
      const info = JSON.parse(readFileSync(file, 'utf8')) as { type: string; id: string; address: string; workers: Record<string, unknown> };
      expect(info).toMatchObject({ type: 'Scheduler', id: scheduler.id, address: scheduler.address });
      expect(Object.keys(info.workers)).toHaveLength(1);
      expect(readdirSync(dir)).toEqual(['scheduler.json']); // no partial file left beside it

      // As the reference: a second file from the same client is refused, and the first stays.
      await expect(client.writeSchedulerFile(path.join(dir, 'other.json'))).rejects.toThrow(SchedulerFileError);
      expect(existsSync(path.join(dir, 'other.json'))).toBe(false);

      const second = await Client.connect({ schedulerFile: file }, { heartbeatIntervalMs: 0 });
      try {
        expect(second.schedulerFile).toBe(file);
        expect(second.schedulerAddress).toBe(scheduler.address);
        expect(await second.submit(inc, 41)).toBe(42);
        await expect(second.writeSchedulerFile(path.join(dir, 'again.json'))).rejects.toThrow(/already set/);
      } finally {
        await second.close();
      }
      await expect(client.writeSchedulerFile('')).rejects.toThrow(TypeError);
    });
  });

  test('bad scheduler files and paths: clear errors, nothing written', async () => {
    await withCluster({ transport: 'tcp', workers: [] }, async ({ client }) => {
      const noAddress = path.join(dir, 'no-address.json');
      writeFileSync(noAddress, JSON.stringify({ type: 'Scheduler' }));
      await expect(Client.connect({ schedulerFile: noAddress })).rejects.toThrow(/has no "address"/);
      await expect(Client.connect({ schedulerFile: path.join(dir, 'missing.json') })).rejects.toThrow(/ENOENT/);
      const notJson = path.join(dir, 'garbage.json');
      writeFileSync(notJson, 'not json');
      await expect(Client.connect({ schedulerFile: notJson })).rejects.toThrow(SyntaxError);

      // A directory that does not exist: the write fails, and the client may write elsewhere.
      await expect(client.writeSchedulerFile(path.join(dir, 'nowhere', 'scheduler.json'))).rejects.toThrow(/ENOENT/);
      expect(client.schedulerFile).toBeUndefined();
      // The rename fails (the path is a directory): the partial file is removed, the error reported.
      mkdirSync(path.join(dir, 'taken'));
      await expect(client.writeSchedulerFile(path.join(dir, 'taken'))).rejects.toThrow(/EISDIR|EEXIST|ENOTEMPTY/);
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(client.schedulerFile).toBeUndefined();

      // Two calls racing: one writes, the other is refused.
      const outcomes = await Promise.allSettled([
        client.writeSchedulerFile(path.join(dir, 'a.json')),
        client.writeSchedulerFile(path.join(dir, 'b.json')),
      ]);
      expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect((outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(SchedulerFileError);
      expect(readdirSync(dir).filter((f) => f === 'a.json' || f === 'b.json')).toEqual([client.schedulerFile === path.join(dir, 'a.json') ? 'a.json' : 'b.json']);
    });
  });

  test('a closed client writes nothing', async () => {
    await withCluster({ transport: 'tcp', workers: [] }, async ({ client }) => {
      const file = path.join(dir, 'scheduler.json');
      const pending = client.writeSchedulerFile(file); // closes while its schedulerInfo() is in flight
      await client.close();
      await expect(pending).rejects.toThrow(/clos(ed|ing)/); // the rpc's CommClosedError, or ClientClosedError
      await expect(client.writeSchedulerFile(file)).rejects.toThrow(ClientClosedError);
      expect(readdirSync(dir)).toEqual([]);
    });
  });
});

describe('idle timeout', () => {
  test('a connected client keeps the scheduler up; once it leaves, the scheduler closes itself', async () => {
    const scheduler = await Scheduler.start({ address: 'inproc://', idleTimeoutMs: 200, validate: true, logger: silentLogger });
    let closed = false;
    void scheduler.closed.then(() => (closed = true));
    try {
      const client = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
      try {
        await new Promise((r) => setTimeout(r, 600));
        expect(closed).toBe(false);
        expect((await client.schedulerInfo()).id).toBe(scheduler.id);
      } finally {
        await client.close();
      }
      await Promise.race([
        scheduler.closed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('scheduler still up 5 s after its last client left')), 5000).unref()),
      ]);
      expect(closed).toBe(true);
    } finally {
      await scheduler.close();
    }
  });
});

describe('moving data', () => {
  const buf = (n: number, fill: number) => Buffer.alloc(n, fill);

  test('replicate: onto every worker, onto n, fewer drops copies; waits for pending futures', async () => {
    await withCluster({ workers: [inline, inline, inline] }, async ({ client, workers }) => {
      const [a] = workers.map((w) => w.address) as [string];
      const x = client.options({ workers: [a] }).submit((n: number) => new Array(n).fill(7), 1000);
      const y = client.scatter(buf(10_000, 1), { workers: [a] }) as ReturnType<typeof client.submit>;
      await client.replicate([x, y]);
      let who = await client.whoHas([x, y]);
      expect(who[x.key]!.sort()).toEqual(workers.map((w) => w.address).sort());
      expect(who[y.key]!.length).toBe(3);
      for (const w of workers) expect(w.data.has(y.key)).toBe(true);
      await client.replicate([x, y], { n: 1 });
      who = await client.whoHas([x, y]);
      expect(who[x.key]!.length).toBe(1);
      expect(who[y.key]!.length).toBe(1);
      await client.replicate(y, { n: 2 });
      expect((await client.whoHas(y))[y.key]!.length).toBe(2);
      expect(await client.gather([x, y])).toEqual([new Array(1000).fill(7), buf(10_000, 1)]);
      await expect(client.replicate([x], { n: 0 })).rejects.toThrow(/positive integer/);
      const bad = client.submit(() => {
        throw new Error('no data');
      });
      await expect(client.replicate([bad])).rejects.toThrow(/no data/);
    });
  });

  test('rebalance evens out the bytes of the given keys (and of all data)', async () => {
    await withCluster({ workers: [inline, inline] }, async ({ client, workers }) => {
      const [a, b] = workers.map((w) => w.address) as [string, string];
      const xs = client.scatter([1, 2, 3, 4].map((i) => buf(50_000, i)), { workers: [a] }) as Array<ReturnType<typeof client.submit>>;
      await client.gather(xs);
      expect((await client.hasWhat())[b]).toEqual([]);
      await client.rebalance(xs);
      const has = await client.hasWhat();
      expect(has[a]!.length).toBe(2);
      expect(has[b]!.length).toBe(2);
      expect(await client.gather(xs)).toEqual([1, 2, 3, 4].map((i) => buf(50_000, i)));
      // All data, now with more on b.
      const ys = client.scatter([5, 6, 7, 8].map((i) => buf(50_000, i)), { workers: [b] }) as Array<ReturnType<typeof client.submit>>;
      await client.gather(ys);
      await client.rebalance();
      const after = await client.hasWhat();
      expect(after[a]!.length).toBe(4);
      expect(after[b]!.length).toBe(4);
    });
  });

  test('retireWorkers moves data only the retiring worker holds, then closes it; nothing is lost', async () => {
    await withCluster({ workers: [inline, inline, inline] }, async ({ client, workers, scheduler }) => {
      const [a, b] = workers.map((w) => w.address) as [string, string, string];
      // Scattered data cannot be recomputed: losing it would show.
      const xs = client.scatter([buf(20_000, 1), buf(20_000, 2), { v: 3 }], { workers: [a] }) as Array<ReturnType<typeof client.submit>>;
      const y = client.options({ workers: [a] }).submit((n: number) => n * 2, 21);
      await client.gather([...xs, y]);
      const retired = await client.retireWorkers([workers[0]!.name]);
      expect(retired).toEqual({ [a]: workers[0]!.name });
      expect(Object.keys((await client.schedulerInfo()).workers)).not.toContain(a);
      await workers[0]!.closed;
      const who = await client.whoHas([...xs, y]);
      for (const f of [...xs, y]) {
        expect(who[f.key]!.length).toBeGreaterThan(0);
        expect(who[f.key]).not.toContain(a);
      }
      expect(await client.gather([...xs, y])).toEqual([buf(20_000, 1), buf(20_000, 2), { v: 3 }, 42]);
      // The departure was clean: nothing counted as suspicious, nothing recomputed.
      expect(scheduler.state.tasks.get(y.key)?.suspicious ?? 0).toBe(0);
      expect(await client.submit(inc, 1)).toBe(2);

      await expect(client.retireWorkers(['no-such-worker'])).rejects.toThrow(/no worker "no-such-worker"/);
      // The last workers holding unique data cannot go: nowhere to put it.
      await expect(client.retireWorkers([b, workers[2]!.address])).rejects.toThrow(/no other worker/);
      expect(Object.keys((await client.schedulerInfo()).workers).sort()).toEqual([b, workers[2]!.address].sort());
      expect(await client.submit(inc, 10)).toBe(11);
    });
  });
});
