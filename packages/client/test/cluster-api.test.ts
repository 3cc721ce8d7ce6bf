// End-to-end checks of API details the broader cluster tests do not reach: submit and map
// options (retries, keys), scatter's spread over threads, gathering through the scheduler,
// the queries without arguments, forced cancel, done callbacks, and options() views of
// scatter / compute / persist.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, Client, delayed, RemoteError, type Future } from '../src/index';
import { until, withCluster } from './harness';
import { add, inc, sleepThen } from './task-functions';

jest.setTimeout(60_000);

const inline = { executor: 'inline' as const };

/** Fails the first time it runs for `marker` (it leaves the file behind), succeeds the next. */
function failOnce(marker: string): string {
  const fs = require('node:fs') as typeof import('node:fs');
  if (!fs.existsSync(marker)) {
    fs.writeFileSync(marker, 'x');
    throw new Error('first attempt fails');
  }
  return 'ok';
}


describe('submit and map options', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dd-api-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('retries: a task that fails once succeeds with retries 1 and fails without', async () => {
    await withCluster({ workers: [inline] }, async ({ client }) => {
      const once = join(dir, 'once');
      const retried = client.options({ retries: 1 }).submit(failOnce, once);
      expect(await retried.result({ timeout: 10_000 })).toBe('ok');
      expect(existsSync(once)).toBe(true);
      const story = await client.story(retried);
      expect(story.filter((e) => e[0] === retried.key && e[2] === 'processing')).toHaveLength(2); // ran twice

      const plain = client.submit(failOnce, join(dir, 'plain'));
      await expect(plain).rejects.toThrow(RemoteError);
      await expect(plain).rejects.toThrow('first attempt fails');
    });
  });

  test('map keys: a list names each call, a string is a prefix (deterministic when pure)', async () => {
    await withCluster({ workers: [inline] }, async ({ client }) => {
      const named = client.options({ key: ['first', 'second'] }).map(inc, [1, 2]);
      expect(named.map((f) => f.key)).toEqual(['first', 'second']);
      expect(await client.gather(named)).toEqual([2, 3]);
      expect(() => client.options({ key: ['only-one'] }).map(inc, [1, 2])).toThrow(RangeError);

      const prefixed = client.options({ key: 'mine' }).map(inc, [1, 2]);
      for (const f of prefixed) expect(f.key).toMatch(/^mine-/);
      expect(new Set(prefixed.map((f) => f.key)).size).toBe(2);
      expect(client.options({ key: 'mine' }).map(inc, [1, 2]).map((f) => f.key)).toEqual(prefixed.map((f) => f.key));
      const impure = client.options({ key: 'mine', pure: false }).map(inc, [1, 2]);
      for (const f of impure) expect(prefixed.map((p) => p.key)).not.toContain(f.key);
      expect(await client.gather([...prefixed, ...impure])).toEqual([2, 3, 2, 3]);
    });
  });
});

/** Compiles only when A and B are the same type (not merely assignable, so `any` fails too). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

describe('typing', () => {
  test('futures are typed by what the function returns, awaited', async () => {
    await withCluster({ workers: [inline] }, async ({ client }) => {
      const sync = client.submit(inc, 1);
      const async_ = client.submit(sleepThen<string>, 1, 'x');
      const mapped = client.map(add, [1, 2], [3, 4]);
      const typedSync: Same<typeof sync, Future<number>> = true;
      const typedAsync: Same<typeof async_, Future<string>> = true; // Promise<string> awaited
      const typedMap: Same<typeof mapped, Future<number>[]> = true;
      const value = await sync;
      const typedValue: Same<typeof value, number> = true;
      expect([typedSync, typedAsync, typedMap, typedValue]).toEqual([true, true, true, true]);
      expect([value, await async_, ...(await client.gather(mapped))]).toEqual([2, 'x', 4, 6]);
    });
  });
});

describe('data', () => {
  test('scatter spreads values round-robin over threads (2 + 1 threads: 4 and 2 of 6)', async () => {
    await withCluster({ workers: [{ ...inline, nthreads: 2 }, { ...inline, nthreads: 1 }] }, async ({ client, workers }) => {
      const xs = client.scatter([1, 2, 3, 4, 5, 6]);
      await client.gather(xs);
      const who = await client.whoHas(xs);
      const count = (address: string): number => xs.filter((f) => who[f.key]?.includes(address)).length;
      expect(count(workers[0]!.address)).toBe(4);
      expect(count(workers[1]!.address)).toBe(2);
    });
  });

  test('gather through the scheduler (direct: false) asks the scheduler and gives what a direct gather gives', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, scheduler }) => {
      const schedulerGathers = jest.spyOn(scheduler, 'gather');
      const xs = client.map(inc, [1, 2, 3, 4]);
      const big = client.submit((n: number) => new Uint8Array(n).fill(7), 1 << 20);
      await client.gather([...xs, big]); // computed (direct: the scheduler's gather is not asked)
      expect(schedulerGathers).not.toHaveBeenCalled();
      const viaScheduler = await client.gather({ xs, big }, { direct: false });
      expect(schedulerGathers).toHaveBeenCalledTimes(1);
      // Only the large result: small ones came with key-in-memory and are already here.
      expect(schedulerGathers.mock.calls[0]![0]).toEqual([big.key]);
      expect(viaScheduler.xs).toEqual([2, 3, 4, 5]);
      expect(viaScheduler.big.byteLength).toBe(1 << 20);
      expect(viaScheduler.big[12345]).toBe(7);
      const direct = await client.gather({ xs, big });
      expect(direct.xs).toEqual(viaScheduler.xs);
      expect(Buffer.from(direct.big).equals(Buffer.from(viaScheduler.big))).toBe(true); // toEqual walks 1 MiB slowly
    });
  });

  test('whoHas and nbytes without arguments cover every key', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      const xs = client.map(inc, [1, 2, 3]);
      const [s] = client.scatter(['scattered']);
      await client.gather([...xs, s!]);
      const keys = [...xs, s!].map((f) => f.key).sort();
      expect(Object.keys(await client.whoHas()).sort()).toEqual(keys);
      const nb = await client.nbytes();
      expect(Object.keys(nb).sort()).toEqual(keys);
      for (const k of keys) expect(nb[k]).toBeGreaterThan(0);
    });
  });
});

describe('cancel and callbacks', () => {
  test('cancel without force keeps a task another client wants; force cancels it for both', async () => {
    await withCluster({ workers: [inline] }, async ({ client, scheduler }) => {
      const other = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
      try {
        const slow = client.submit(sleepThen<string>, 300, 'slow');
        const theirs = other.futureOf<string>(slow.key);
        await new Promise((r) => setTimeout(r, 50));
        await client.cancel([slow]);
        await expect(slow).rejects.toBeInstanceOf(CancelledError);
        expect(await theirs.result({ timeout: 10_000 })).toBe('slow'); // the other client still wanted it

        const slow2 = client.submit(sleepThen<string>, 5000, 'slow2');
        const theirs2 = other.futureOf<string>(slow2.key);
        await new Promise((r) => setTimeout(r, 50));
        await client.cancel([slow2], { force: true });
        await expect(slow2).rejects.toBeInstanceOf(CancelledError);
        await expect(theirs2.result({ timeout: 10_000 })).rejects.toBeInstanceOf(CancelledError);
      } finally {
        await other.close();
      }
    });
  });

  test('addDoneCallback: once when the future is done, asynchronously when it already is', async () => {
    await withCluster({ workers: [inline] }, async ({ client }) => {
      const calls: Array<[string, string]> = [];
      const f = client.submit(sleepThen<number>, 50, 1);
      f.addDoneCallback((done) => calls.push([done.key, done.status]));
      await f;
      await until(() => calls.length === 1, 2000, 'the callback');
      expect(calls).toEqual([[f.key, 'finished']]);

      const failed = client.submit((x: number) => {
        throw new Error(`no ${x}`);
      }, 3);
      await failed.exception();
      let late: Future | undefined;
      failed.addDoneCallback((done) => (late = done));
      expect(late).toBeUndefined(); // not during the call
      await until(() => late !== undefined, 2000, 'the callback of a done future');
      expect(late!.status).toBe('error');
      await new Promise((r) => setTimeout(r, 20));
      expect(calls).toHaveLength(1);
    });
  });
});

describe('options() views', () => {
  test('scatter, compute and persist take the view\'s options (workers)', async () => {
    await withCluster({ workers: [{ ...inline, name: 'alpha' }, { ...inline, name: 'beta' }] }, async ({ client, workers }) => {
      const beta = client.options({ workers: ['beta'] });
      const xs = beta.scatter([1, 2, 3]);
      await client.gather(xs);
      const who = await client.whoHas(xs);
      for (const f of xs) expect(who[f.key]).toEqual([workers[1]!.address]);

      const d = delayed(add)(delayed(inc)(1), 40);
      const computed = beta.compute(d);
      expect(await computed).toBe(42);
      expect((await client.whoHas([computed]))[computed.key]).toEqual([workers[1]!.address]);

      const persisted = beta.persist(delayed(inc)(99));
      expect(await persisted.compute({ client })).toBe(100);
      const stream = await client.getTaskStream();
      const mine = stream.filter((r) => r.key.startsWith('inc-') || r.key.startsWith('add-'));
      expect(mine.length).toBeGreaterThanOrEqual(3);
      for (const r of mine) expect(r.worker).toBe(workers[1]!.address);
    });
  });
});
