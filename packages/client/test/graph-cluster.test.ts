// Graphs end to end: a real scheduler and workers in this process (test/harness.ts).

import { RemoteError } from '../src/index';
import { until, withCluster, workerKeys } from './harness';
import { inc, add, sum } from './task-functions';

jest.setTimeout(60_000);

function boom(x: number): number {
  throw new TypeError(`boom ${x}`);
}

describe('graphs on a cluster', () => {
  test('get: tuple keys, a reduction over all, intermediates freed afterwards', async () => {
    await withCluster({ nWorkers: 2, timeoutMs: 30_000 }, async ({ client, workers }) => {
      const n = 500;
      const g = new Map<string | (string | number)[], unknown>();
      for (let i = 0; i < n; i++) g.set(['x', i], [inc, i]);
      g.set('total', [sum, Array.from({ length: n }, (_, i) => ['x', i])]);
      g.set('pair', [add, ['x', 0], ['x', 1]]);
      expect(await client.get(g, ['total', 'pair', ['x', 7]])).toEqual([(n * (n + 1)) / 2, 3, 8]);
      // Nobody wants anything any more: every result is freed on every worker.
      await until(() => workers.every((w) => workerKeys(w).length === 0), 10_000, 'workers to free all keys');
      expect(client.refcounts().size).toBe(0);
    });
  });

  test('a sum over more than 64 inputs nobody else wants: its result stays, the inputs are freed after it', async () => {
    await withCluster({ nWorkers: 2, timeoutMs: 30_000 }, async ({ client, workers }) => {
      const xs = client.map(inc, Array.from({ length: 100 }, (_, i) => i));
      const total = client.submit(sum, xs);
      // The client lets the inputs go at once: only the sum holds them, and its finishing frees
      // them (in the scheduler's release-deferred stimulus, fed by the server's timer).
      for (const f of xs) f.release();
      expect(await total).toBe(5050);
      await until(() => workers.every((w) => workerKeys(w).every((k) => k === total.key)), 10_000, 'workers to free the inputs');
      expect(workers.flatMap(workerKeys)).toEqual([total.key]);
    });
  });

  test('get with Futures and scattered data inside, nested tasks, and task errors', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      const f = client.submit(inc, 10);
      const [s] = client.scatter([100]);
      const g = { a: [add, f, s], b: [sum, [[inc, 'a'], 'a', [add, f, 1]]], c: [boom, 'a'], d: [inc, 'c'] };
      expect(await client.get(g, ['a', 'b'])).toEqual([111, 112 + 111 + 12]);
      const err = await client.get(g, 'd').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).message).toMatch(/TypeError: boom 111/);
      expect(await f).toBe(11);
    });
  });
});
