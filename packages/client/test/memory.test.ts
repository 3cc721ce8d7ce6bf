// Memory management end to end (in-process scheduler, workers and client): a worker whose
// results exceed its memory limit several times spills them to disk and serves them back to a
// dependent task, a peer and the client; a worker paused by memory pressure gets no new work.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Scheduler } from '@dd/scheduler';
import { SpillStore, Worker } from '@dd/worker';
import { Client, wait } from '../src/index';
import { validateScheduler } from './harness';

jest.setTimeout(60_000);

const quiet = { warn: () => {} };
const make = (i: number, n: number) => Buffer.alloc(n, i);
const firstBytes = (bufs: Uint8Array[]) => bufs.map((b) => b[0]! * 1_000_000 + b.byteLength);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

interface Cluster {
  scheduler: Scheduler;
  workers: Worker[];
  client: Client;
}

async function withCluster(workerOptions: Array<Partial<Parameters<typeof Worker.start>[0]>>, body: (c: Cluster) => Promise<void>): Promise<void> {
  const scheduler = await Scheduler.create({ validate: true, logger: { debug() {}, info() {}, warn() {}, error() {} } });
  const workers: Worker[] = [];
  let client: Client | undefined;
  try {
    for (const o of workerOptions) {
      workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, validate: true, logger: quiet, memoryLimit: 0, ...o }));
    }
    client = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
    await body({ scheduler, workers, client });
    validateScheduler(scheduler);
    for (const w of workers) w.state.validateState();
  } finally {
    await client?.close();
    await Promise.all(workers.map((w) => w.close()));
    await scheduler.close();
  }
}

test('results several times the memory limit spill to disk and come back for a dependent task, a peer and the client', async () => {
  const limit = 4 * 2 ** 20;
  const size = 256 * 1024;
  const n = 64; // 16 MiB of results: four times the limit
  // Process memory (RSS) is this jest process's, so only spilling by managed bytes is on here.
  await withCluster([
    { name: 'small', memoryLimit: limit, memory: { target: 0.6, spill: false, pause: false } },
    { name: 'peer' },
  ], async ({ workers, client }) => {
    const [small, peer] = workers as [Worker, Worker];
    const store = small.data as SpillStore;
    expect(store).toBeInstanceOf(SpillStore);
    const target = 0.6 * limit;

    const onSmall = client.options({ workers: [small.address] });
    const xs = onSmall.map(make, range(n), range(n).map(() => size));
    await wait(xs); // computed, not gathered (the client would cache the values)
    expect(store.size).toBe(n);
    expect(store.memoryBytes).toBeLessThanOrEqual(target);
    expect(store.spilledBytes).toBeGreaterThanOrEqual(n * size - target);
    expect(small.metrics()).toMatchObject({ managedBytes: store.memoryBytes, spilledBytes: store.spilledBytes });

    // A peer fetches the oldest results (on disk by now).
    const oldest = xs.slice(0, 8);
    for (const x of oldest) expect(store.isSpilled(x.key)).toBe(true);
    let unspilled = store.stats.unspilled;
    const fromPeer = await client.options({ workers: [peer.address] }).submit(firstBytes, oldest);
    expect(fromPeer).toEqual(range(8).map((i) => i * 1_000_000 + size));
    expect(store.stats.unspilled).toBeGreaterThanOrEqual(unspilled + 8);
    expect(store.memoryBytes).toBeLessThanOrEqual(target);

    // A dependent task on the small worker needs every result, most of them on disk.
    unspilled = store.stats.unspilled;
    const all = await onSmall.submit(firstBytes, xs);
    expect(all).toEqual(range(n).map((i) => i * 1_000_000 + size));
    expect(store.stats.unspilled).toBeGreaterThan(unspilled);
    expect(store.memoryBytes).toBeLessThanOrEqual(target);

    // The client gathers everything.
    unspilled = store.stats.unspilled;
    const values = (await client.gather(xs)) as Uint8Array[];
    expect(values).toHaveLength(n);
    values.forEach((v, i) => {
      expect(v.byteLength).toBe(size);
      expect(v[0]).toBe(i);
      expect(v[size - 1]).toBe(i);
    });
    expect(store.stats.unspilled).toBeGreaterThan(unspilled);
    expect(store.stats.unspillable).toBe(0);
    expect(store.memoryBytes).toBeLessThanOrEqual(target);
  });
});

test('a spilled dependency that cannot be read back fails its dependent with why; the worker goes on', async () => {
  const limit = 4 * 2 ** 20;
  const size = 256 * 1024;
  await withCluster([{ name: 'small', memoryLimit: limit, memory: { target: 0.6, spill: false, pause: false } }], async ({ workers, client }) => {
    const store = workers[0]!.data as SpillStore;
    const xs = client.map(make, range(32), range(32).map(() => size));
    await wait(xs);
    expect(store.isSpilled(xs[0]!.key)).toBe(true);
    for (const f of fs.readdirSync(store.directory)) fs.rmSync(path.join(store.directory, f));

    const dependent = client.submit(firstBytes, [xs[0]!]);
    await expect(dependent.result({ timeout: 10_000 })).rejects.toThrow(/cannot read spilled data of .* back from/);
    expect(await client.submit((x: number) => x + 1, 1).result({ timeout: 10_000 })).toBe(2);
  });
});

test('a worker paused by memory pressure gets no new tasks; the scheduler sends them elsewhere until it resumes', async () => {
  let rss = 0;
  const limit = 1000 * 2 ** 20;
  await withCluster([
    { name: 'pressed', memoryLimit: limit, memory: { processMemory: () => rss, monitorIntervalMs: 20 } },
    { name: 'other' },
  ], async ({ scheduler, workers, client }) => {
    const [pressed, other] = workers as [Worker, Worker];
    const status = () => scheduler.state.workers.get(pressed.address)?.status;
    rss = 0.85 * limit;
    await waitFor(() => pressed.paused && status() === 'paused', 'the scheduler to see the worker paused');
    expect(pressed.state.paused).toBe(true);

    const inc = (x: number) => x + 1;
    const ys = client.options({ pure: false }).map(inc, range(40));
    expect(await client.gather(ys)).toEqual(range(40).map((i) => i + 1));
    expect(ys.every((y) => other.data.has(y.key) && !pressed.data.has(y.key))).toBe(true);

    rss = 0.5 * limit;
    await waitFor(() => !pressed.paused && status() === 'running', 'the worker to resume');
    expect(pressed.state.paused).toBe(false);
    // Work restricted to it runs again.
    expect(await client.options({ workers: [pressed.address], pure: false }).submit(inc, 1)).toBe(2);
  });
});

async function waitFor(pred: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
