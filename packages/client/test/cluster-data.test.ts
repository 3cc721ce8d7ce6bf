// Datasets, metadata and structured events (scheduler extensions) end to end.

import { Client, type Future } from '../src/index';
import { until, withCluster, workerKeys } from './harness';
import { inc } from './task-functions';

jest.setTimeout(60_000);

describe('datasets', () => {
  test('published futures outlive the publishing client; another client reads them; unpublish frees them', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client: b, scheduler, workers }) => {
      const a = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
      let xKey: string;
      let yKey: string;
      try {
        const x = a.submit(inc, 41);
        const y = a.submit(inc, 99);
        xKey = x.key;
        yKey = y.key;
        // Published while still pending: the pin follows the update-graph on the stream.
        await a.publishDataset({ answer: x, mixed: { f: y, label: 'hundred', list: [1, 2] } });
        expect(await a.listDatasets()).toEqual(['answer', 'mixed']);
        await x;
      } finally {
        await a.close();
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(await b.listDatasets()).toEqual(['answer', 'mixed']);
      // One Future alone resolves to its value; structures keep their Futures.
      expect(await b.getDataset('answer')).toBe(42);
      const mixed = await b.getDataset<{ f: Future<number>; label: string; list: number[] }>('mixed');
      expect(mixed.label).toBe('hundred');
      expect(mixed.list).toEqual([1, 2]);
      expect(mixed.f.key).toBe(yKey);
      expect(await mixed.f).toBe(100);
      const z = b.submit(inc, mixed.f);
      expect(await z).toBe(101);
      z.release();
      mixed.f.release();

      await expect(b.publishDataset({ answer: 1 })).rejects.toThrow(/dataset "answer" is already published/);
      await b.publishDataset({ answer: 7 }, { override: true });
      expect(await b.getDataset('answer')).toBe(7);
      await b.unpublishDataset('answer');
      await b.unpublishDataset('mixed');
      expect(await b.listDatasets()).toEqual([]);
      await expect(b.getDataset('answer')).rejects.toThrow(/dataset "answer" is not published/);
      await expect(b.unpublishDataset('nope')).rejects.toThrow(/not published/);
      // Nobody wants y any more (x's Future from getDataset is released when garbage-collected).
      await until(() => workers.every((w) => !workerKeys(w).includes(yKey)), 10_000, 'the published key to be freed');
      expect(xKey).toMatch(/^inc-/);
    });
  });
});

describe('client.datasets (the mapping)', () => {
  test('set / get / has / keys / list / for await / delete, shared between clients', async () => {
    await withCluster({ nWorkers: 1 }, async ({ client: b, scheduler, workers }) => {
      const a = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
      try {
        expect(a.datasets).toBe(a.datasets);
        expect(await a.datasets.keys()).toEqual([]);
        expect(await a.datasets.has('answer')).toBe(false);
        const x = a.submit(inc, 41);
        const y = a.submit(inc, 99);
        await a.datasets.set('answer', x);
        await a.datasets.set('kept', y);
        await a.datasets.set('plain', { label: 'p', n: [1, 2] });
        // set replaces, like Map.set (publishDataset refuses an existing name without override)
        await a.datasets.set('other', 1);
        await a.datasets.set('other', 2);
        expect(await b.datasets.get('other')).toBe(2);

        // another client sees the same mapping
        expect(await b.datasets.has('answer')).toBe(true);
        const names = ['answer', 'kept', 'other', 'plain'];
        expect(await b.datasets.keys()).toEqual(names);
        expect(await b.datasets.list()).toEqual(names);
        expect(await b.listDatasets()).toEqual(names);
        const seen: string[] = [];
        for await (const name of b.datasets) seen.push(name);
        expect(seen).toEqual(names);
        expect(await b.datasets.get('answer')).toBe(42);
        expect(await b.datasets.get<{ label: string; n: number[] }>('plain')).toEqual({ label: 'p', n: [1, 2] });
        expect(await b.getDataset('plain')).toEqual({ label: 'p', n: [1, 2] });

        // missing names fail as getDataset / unpublishDataset do
        await expect(b.datasets.get('nope')).rejects.toThrow(/dataset "nope" is not published/);
        await expect(b.datasets.delete('nope')).rejects.toThrow(/dataset "nope" is not published/);
        await expect(b.datasets.get(3 as unknown as string)).rejects.toThrow(TypeError);

        // the publication keeps y's data after the client lets go of its Future
        const key = y.key;
        await y;
        y.release();
        x.release();
        await new Promise((r) => setTimeout(r, 50));
        expect(workers.some((w) => workerKeys(w).includes(key))).toBe(true);
        await a.datasets.delete('kept');
        await a.datasets.delete('answer');
        await b.datasets.delete('plain');
        await b.datasets.delete('other');
        expect(await a.datasets.has('answer')).toBe(false);
        expect(await a.datasets.keys()).toEqual([]);
        // unpublished: nobody wants y's key any more (b's Future of x lives until garbage-collected)
        await until(() => workers.every((w) => !workerKeys(w).includes(key)), 10_000, 'the unpublished key to be freed');
      } finally {
        await a.close();
      }
    });
  });
});

describe('metadata and events', () => {
  test('setMetadata / getMetadata by key path, with defaults', async () => {
    await withCluster({ nWorkers: 1 }, async ({ client }) => {
      await client.setMetadata('a', 1);
      await client.setMetadata(['b', 'c', 'd'], { deep: true });
      await client.setMetadata(['b', 'e'], [1, 2]);
      expect(await client.getMetadata('a')).toBe(1);
      expect(await client.getMetadata(['b', 'c'])).toEqual({ d: { deep: true } });
      expect(await client.getMetadata('b')).toEqual({ c: { d: { deep: true } }, e: [1, 2] });
      expect(await client.getMetadata(['b', 'x'], 'fallback')).toBe('fallback');
      await expect(client.getMetadata(['a', 'b'])).rejects.toThrow(/no metadata at \["a","b"\]/);
      await client.setMetadata(['a', 'b'], 2); // replaces the leaf by a tree
      expect(await client.getMetadata('a')).toEqual({ b: 2 });
    });
  });

  test('logEvent / getEvents, and the scheduler logs workers joining and leaving', async () => {
    await withCluster({ nWorkers: 1 }, async ({ client, startWorker }) => {
      const t0 = Date.now() / 1000;
      client.logEvent('mine', { n: 1 });
      client.logEvent(['mine', 'other'], 'two');
      await until(async () => (await client.getEvents('mine')).length === 2, 5000, 'events');
      const mine = await client.getEvents('mine');
      expect(mine.map((e) => e[1])).toEqual([{ n: 1 }, 'two']);
      expect(mine[0]![0]).toBeGreaterThanOrEqual(t0 - 1);
      expect((await client.getEvents('other')).map((e) => e[1])).toEqual(['two']);
      expect(await client.getEvents('none')).toEqual([]);
      const w = await startWorker();
      await w.close();
      await until(async () => (await client.getEvents(w.address)).length === 2, 5000, 'worker events');
      expect((await client.getEvents(w.address)).map((e) => e[1])).toEqual([
        { action: 'add-worker', worker: w.address },
        { action: 'remove-worker', worker: w.address },
      ]);
      const all = await client.getEvents();
      expect(Object.keys(all)).toEqual(expect.arrayContaining(['mine', 'other', 'all', w.address]));
      expect(() => client.logEvent([] as string[], 1)).toThrow(/topic must be/);
      // A message that cannot be encoded fails in the caller; the connection and later events are unharmed.
      expect(() => client.logEvent('mine', { f: () => 1 })).toThrow(/cannot be sent to the scheduler/);
      client.logEvent('mine', 'after');
      await until(async () => (await client.getEvents('mine')).length === 3, 5000, 'the event after the refused one');
      expect(await client.submit((x: number) => x + 1, 1)).toBe(2);
    });
  });
});
