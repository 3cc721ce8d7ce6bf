// End-to-end behaviour: a real scheduler, real workers and the client in one process.

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asCompleted, CancelledError, Client, Future, ref, RemoteError, wait } from '../src/index';
import type { Worker } from '@dd/worker';
import { until, withCluster, workerKeys } from './harness';
import { inc, add, sleepThen } from './task-functions';

jest.setTimeout(60_000);


describe('cluster end to end', () => {
  test('submit, map, gather with nested shapes', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      const a = client.submit(inc, 1);
      expect(await a).toBe(2);
      const xs = client.map(inc, [1, 2, 3, 4, 5]);
      const ys = client.map(add, xs, [10, 20, 30, 40, 50]);
      expect(await client.gather(ys)).toEqual([12, 23, 34, 45, 56]);
      const nested = await client.gather({ a, list: [xs[0]!, [xs[1]!, { deep: xs[2]! }]], plain: 'x' });
      expect(nested).toEqual({ a: 2, list: [2, [3, { deep: 4 }]], plain: 'x' });
      const total = client.submit((o: { v: number[]; w: { z: number } }) => o.v.reduce((s, x) => s + x, 0) + o.w.z, { v: xs, w: { z: a } } as never);
      expect(await total).toBe(2 + 3 + 4 + 5 + 6 + 2);
    });
  });

  test('dependencies across workers', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const [w1, w2] = workers.map((w) => w.address);
      const x = client.options({ workers: [w1!] }).submit(inc, 1);
      const y = client.options({ workers: [w2!] }).submit(inc, 2);
      const z = client.options({ workers: [w1!] }).submit(add, x, y);
      expect(await z).toBe(5);
      const who = await client.whoHas([x, y, z]);
      expect(who[x.key]).toContain(w1);
      expect(who[y.key]).toContain(w2);
      expect(who[z.key]).toContain(w1);
    });
  });

  test('data locality: a task on data held by worker B runs on B', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const b = workers[1]!.address;
      const [big] = client.scatter([new Float64Array(1_000_000).fill(1)], { workers: [b] });
      await big;
      const sums = Array.from({ length: 4 }, (_, i) => client.submit((arr: Float64Array, k: number) => arr.length + k, big!, i));
      expect(await client.gather(sums)).toEqual([1e6, 1e6 + 1, 1e6 + 2, 1e6 + 3]);
      const who = await client.whoHas(sums);
      for (const s of sums) expect(who[s.key]).toEqual([b]);
    });
  });

  test('work stealing: slow tasks queued on the holder of their input spread to the idle worker', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const [a, b] = workers.map((w) => w.address) as [string, string];
      const [small] = client.scatter([1], { workers: [a] });
      await small;
      // Placed by data locality, all eight go to A; balance moves queued ones to B.
      const slow = async (x: number, i: number): Promise<number> => {
        await new Promise((r) => setTimeout(r, 300));
        return x + i;
      };
      const outs = Array.from({ length: 8 }, (_, i) => client.submit(slow, small!, i));
      expect(await client.gather(outs)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const who = await client.whoHas(outs);
      const onB = outs.filter((f) => who[f.key]?.includes(b)).length;
      expect(onB).toBeGreaterThanOrEqual(2);
      expect(outs.filter((f) => who[f.key]?.includes(a)).length).toBeGreaterThanOrEqual(2);
    });
  });

  test('restrictions: hard, loose, and no-worker until a worker joins', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers, startWorker }) => {
      const a = workers[0]!.address;
      const onA = client.options({ workers: a }).map(inc, [10, 11, 12, 13]);
      await client.gather(onA);
      const who = await client.whoHas(onA);
      for (const f of onA) expect(who[f.key]).toEqual([a]);

      const loose = client.options({ workers: ['nobody-by-this-name'], allowOtherWorkers: true }).submit(inc, 100);
      expect(await loose.result({ timeout: 10_000 })).toBe(101);

      const waiting = client.options({ workers: ['late-worker'] }).submit(inc, 200);
      await new Promise((r) => setTimeout(r, 200));
      expect(waiting.status).toBe('pending');
      const late = await startWorker({ name: 'late-worker' });
      expect(await waiting.result({ timeout: 10_000 })).toBe(201);
      expect((await client.whoHas([waiting]))[waiting.key]).toEqual([late.address]);
    });
  });

  test('resources limit concurrency: two GPU tasks on a {GPU: 1} worker run one after another', async () => {
    await withCluster({ workers: [{ nthreads: 2, resources: { GPU: 1 } }] }, async ({ client }) => {
      const span = async (tag: number): Promise<[number, number, number]> => {
        const start = Date.now();
        await new Promise((r) => setTimeout(r, 300));
        return [tag, start, Date.now()];
      };
      const [a, b] = [1, 2].map((i) => client.options({ resources: { GPU: 1 } }).submit(span, i));
      const [[, s1, e1], [, s2, e2]] = await client.gather([a!, b!]);
      const overlap = Math.min(e1, e2) - Math.max(s1, s2);
      expect(overlap).toBeLessThanOrEqual(0);
      // without resources both threads are used at once
      const [c, d] = [3, 4].map((i) => client.submit(span, i));
      const [[, s3, e3], [, s4, e4]] = await client.gather([c!, d!]);
      expect(Math.min(e3, e4) - Math.max(s3, s4)).toBeGreaterThan(100);
    });
  });

  test('priorities: higher priority runs first', async () => {
    await withCluster({ workers: [{ nthreads: 1 }] }, async ({ client }) => {
      const stamp = async (tag: string, ms: number): Promise<[string, number]> => {
        await new Promise((r) => setTimeout(r, ms));
        return [tag, Date.now()];
      };
      const blocker = client.submit(stamp, 'blocker', 300);
      // The blocker is on the worker (a fixed sleep was not always enough on a loaded machine).
      await until(async () => Object.values(await client.processing()).some((keys) => keys.includes(blocker.key)), 10_000, 'the blocker to be processing');
      await new Promise((r) => setTimeout(r, 50));
      const low = client.options({ priority: -10 }).map(stamp, ['low-1', 'low-2', 'low-3'], [5, 5, 5]);
      const high = client.options({ priority: 10 }).submit(stamp, 'high', 5);
      const results = await client.gather([blocker, ...low, high]);
      const order = [...results].sort((x, y) => x[1] - y[1]).map((r) => r[0]);
      expect(order[0]).toBe('blocker');
      expect(order[1]).toBe('high');
    });
  });

  test('errors: RemoteError with the remote stack, dependents reject with the same', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      const bad = client.submit(function fails(x: number) {
        throw new RangeError(`bad value ${x}`);
      }, 7);
      const dep = client.submit(inc, bad);
      const dep2 = client.submit(add, dep, 1);
      await expect(bad.result()).rejects.toBeInstanceOf(RemoteError);
      const err = (await bad.exception()) as RemoteError;
      expect(err.remoteName).toBe('RangeError');
      expect(err.remoteMessage).toBe('bad value 7');
      expect(err.remoteStack ?? '').toContain('bad value 7');
      expect(await bad.traceback()).toContain('fails');
      expect(bad.status).toBe('error');
      await expect(dep2.result()).rejects.toMatchObject({ remoteName: 'RangeError', remoteMessage: 'bad value 7' });
      expect(dep.status).toBe('error');
      const ok = client.submit(inc, 1);
      await expect(client.gather([ok, bad])).rejects.toThrow('bad value 7');
      expect(await client.gather([ok, bad, dep, { ok, bad }], { errors: 'skip' })).toEqual([2, { ok: 2 }]);
    });
  });

  test('a result dd cannot send fails its task with the reason, and its dependents with it', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const circular = client.submit(function makeCycle() {
        const node: { name: string; self?: unknown } = { name: 'n' };
        node.self = node;
        return node;
      });
      // Before, the result stayed on its worker and every fetch of it failed as if that worker
      // were gone: a dependent placed elsewhere made the scheduler recompute the task forever.
      const elsewhere = client.options({ workers: workers[1]!.address }).submit((n: { name: string }) => n.name, circular);
      const dependent = client.submit((n: { name: string }) => n.name, circular);
      const err = (await circular.exception()) as RemoteError;
      expect(err.remoteName).toBe('SerializationError');
      expect(err.remoteMessage).toContain("the task's result cannot be sent");
      expect(err.remoteMessage).toContain('value.self is the same object as an enclosing one (a cycle)');
      await expect(dependent.result({ timeout: 10_000 })).rejects.toMatchObject({ remoteName: 'SerializationError' });
      await expect(elsewhere.result({ timeout: 10_000 })).rejects.toMatchObject({ remoteName: 'SerializationError' });

      const protoKey = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
      const returned = client.submit((text: string) => JSON.parse(text) as unknown, '{"x": {"__proto__": 1}}');
      await expect(returned.result({ timeout: 10_000 })).rejects.toThrow('own key "__proto__" (at value.x.__proto__)');
      // As an argument it is refused at once, where it is given.
      expect(() => client.submit((v: unknown) => v, protoKey)).toThrow('"__proto__"');
    });
  });

  test('a value a worker holds but cannot send (inline executor) fails where it is needed, and is not recomputed', async () => {
    await withCluster({ workers: [{ executor: 'inline' }, { executor: 'inline' }] }, async ({ client, scheduler, workers }) => {
      // With the inline executor a result may be anything: a function is fine for tasks on its worker.
      const holder = client.options({ workers: workers[0]!.address }).submit(function makeFn() {
        return { f: (): number => 1 };
      });
      const here = client.options({ workers: workers[0]!.address }).submit((o: { f: () => number }) => o.f() + 1, holder);
      expect(await here.result({ timeout: 10_000 })).toBe(2);
      // Elsewhere it would have to travel: the dependent fails with why, the client's fetch too.
      const elsewhere = client.options({ workers: workers[1]!.address }).submit((o: { f: unknown }) => typeof o.f, holder);
      await expect(elsewhere.result({ timeout: 10_000 })).rejects.toMatchObject({ remoteName: 'SerializationError' });
      await expect(holder.result({ timeout: 10_000 })).rejects.toMatchObject({ remoteName: 'SerializationError' });
      await expect(client.gather(holder, { direct: false })).rejects.toMatchObject({ remoteName: 'SerializationError' });
      expect(holder.status).toBe('finished');
      // Before, each failed fetch looked like a lost worker and the task ran again, hundreds of times a second.
      const runs = scheduler.state.story(holder.key).filter((e) => e[0] === holder.key && e[2] === 'processing').length;
      expect(runs).toBe(1);
    });
  });

  test('retry reruns a failed task and its failed dependency', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      const marker = join(tmpdir(), `dd-retry-${process.pid}-${Date.now()}`);
      const flaky = client.submit((path: string) => {
        const fs = require('node:fs') as typeof import('node:fs');
        if (!fs.existsSync(path)) {
          fs.writeFileSync(path, 'x');
          throw new Error('first attempt fails');
        }
        fs.unlinkSync(path);
        return 'ok';
      }, marker);
      const dep = client.submit((s: string) => s + '!', flaky);
      await expect(dep).rejects.toThrow('first attempt fails');
      await dep.retry();
      expect(await dep.result({ timeout: 10_000 })).toBe('ok!');
      expect(await flaky).toBe('ok');
    });
  });

  test('a function using an enclosing-scope variable fails with an explanation', async () => {
    await withCluster({ nWorkers: 1 }, async ({ client }) => {
      const factor = 3;
      const f = client.submit((x: number) => x * factor, 2);
      const err = (await f.exception()) as Error;
      expect(err).toBeInstanceOf(RemoteError);
      expect(err.message).toMatch(/factor/);
      expect(err.message).toMatch(/enclosing scope|closure|outer/i);
    });
  });

  test('cancel', async () => {
    await withCluster({ workers: [{ nthreads: 1 }] }, async ({ client }) => {
      const slow = client.submit(sleepThen<string>, 2000, 'slow');
      const queued = client.submit(sleepThen<string>, 10, 'queued');
      const after = client.submit((s: string) => s + '!', queued);
      await new Promise((r) => setTimeout(r, 100));
      await client.cancel([queued]);
      expect(queued.status).toBe('cancelled');
      await expect(queued.result()).rejects.toBeInstanceOf(CancelledError);
      await until(() => after.done(), 5000, 'dependent of a cancelled task to be done');
      expect(['cancelled', 'error']).toContain(after.status);
      await slow.cancel();
      expect(slow.cancelled()).toBe(true);
      expect(await client.submit(inc, 1)).toBe(2);
    });
  });

  test('submitting a key again while its cancel is in flight makes a new computation', async () => {
    await withCluster({ workers: [{ nthreads: 2 }] }, async ({ client }) => {
      for (const resubmitAfter of ['the same tick', 'a later tick']) {
        const first = client.submit(sleepThen<string>, 300, resubmitAfter);
        await new Promise((r) => setTimeout(r, 50));
        const cancelling = first.cancel();
        if (resubmitAfter === 'a later tick') await new Promise((r) => setImmediate(r));
        const again = client.submit(sleepThen<string>, 300, resubmitAfter);
        expect(again.key).toBe(first.key);
        await cancelling;
        expect(first.status).toBe('cancelled');
        expect(again.status).toBe('pending');
        expect(await again.result({ timeout: 10_000 })).toBe(resubmitAfter);
      }
    });
  });

  test('release frees worker memory', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const xs = client.map(inc, [1, 2, 3, 4, 5, 6]);
      await client.gather(xs);
      const keys = new Set(xs.map((f) => f.key));
      const held = (): number => workers.flatMap(workerKeys).filter((k) => keys.has(k)).length;
      expect(held()).toBeGreaterThanOrEqual(6);
      for (const f of xs) f.release();
      await until(() => held() === 0, 5000, 'workers to free released keys');
      expect(workers.flatMap(workerKeys)).toEqual([]);
    });
  });

  test('pure submissions: same call twice = one key, one computation', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      const counter = (x: number): number => {
        const g = globalThis as { __ddCount?: number };
        g.__ddCount = (g.__ddCount ?? 0) + 1;
        return x * 1000 + g.__ddCount;
      };
      const a = client.submit(counter, 5);
      const b = client.submit(counter, 5);
      expect(a.key).toBe(b.key);
      const [va, vb] = await client.gather([a, b]);
      expect(va).toBe(vb);
      const story = await client.story(a);
      expect(story.filter((e) => e[2] === 'memory').length).toBe(1);
      const c = client.options({ pure: false }).submit(counter, 5);
      expect(c.key).not.toBe(a.key);
    });
  });

  test('scatter and broadcast', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const [x, y] = client.scatter<unknown>([1, { a: [1, 2] }]);
      expect(x!.status).toBe('pending');
      expect(await client.gather([x!, y!])).toEqual([1, { a: [1, 2] }]);
      expect(x!.status).toBe('finished');
      expect(await client.submit(add, x as never, 41)).toBe(42);
      const shared = client.scatter(Buffer.from('everywhere'), { broadcast: true });
      await shared;
      expect((await client.whoHas([shared]))[shared.key]!.sort()).toEqual(workers.map((w) => w.address).sort());
      const placed = client.scatter([10, 20], { workers: [workers[1]!.address] });
      await client.gather(placed);
      const who = await client.whoHas(placed);
      for (const f of placed) expect(who[f.key]).toEqual([workers[1]!.address]);
      const nb = await client.nbytes(placed);
      for (const f of placed) expect(nb[f.key]).toBeGreaterThan(0);
    });
  });

  test('a task submitted on scattered data before the scatter finished waits for it', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      const [data] = client.scatter([Buffer.alloc(1 << 16, 7)]);
      // Same tick: the scheduler has not registered the scattered key yet.
      const length = client.submit((b: Uint8Array) => b.byteLength, data!);
      const pair = client.submit(add, client.scatter(20), 22);
      expect(await length).toBe(1 << 16);
      expect(await pair).toBe(42);
    });
  });

  test('wait FIRST_COMPLETED and asCompleted', async () => {
    await withCluster({ workers: [{ nthreads: 4 }] }, async ({ client }) => {
      const fast = client.submit(sleepThen, 10, 'fast');
      const slow = client.submit(sleepThen, 1500, 'slow');
      const { done, notDone } = await wait([fast, slow], { returnWhen: 'FIRST_COMPLETED' });
      expect([...done]).toEqual([fast]);
      expect([...notDone]).toEqual([slow]);
      await wait([fast, slow]);
      expect(slow.status).toBe('finished');

      // Gaps of 600 ms keep the completion order certain on a loaded machine.
      const fs = [1200, 10, 600].map((ms) => client.submit(sleepThen<number>, ms, ms));
      const seen: number[] = [];
      for await (const [, v] of asCompleted(fs, { withResults: true })) seen.push(v);
      expect(seen).toEqual([10, 600, 1200]);
    });
  });

  test('asCompleted yields the Futures themselves, failed ones included, as the reference does', async () => {
    await withCluster({ workers: [{ nthreads: 2 }] }, async ({ client }) => {
      const ok = client.submit(inc, 1);
      const bad = client.submit((): number => {
        throw new Error('boom');
      });
      const yielded: unknown[] = [];
      for await (const f of asCompleted([ok, bad])) yielded.push(f);
      expect(new Set(yielded)).toEqual(new Set([ok, bad]));
      expect(bad.status).toBe('error');

      const batched: unknown[] = [];
      for await (const batch of asCompleted([client.submit(inc, 2)]).batches()) batched.push(...batch);
      expect(batched).toHaveLength(1);
      expect(batched[0]).toBeInstanceOf(Future);

      // With results, a failure throws by default, and comes as the pair's second half without raiseErrors.
      await expect(
        (async () => {
          for await (const pair of asCompleted([bad], { withResults: true })) void pair;
        })(),
      ).rejects.toThrow(RemoteError);
      const pairs: Array<[unknown, unknown]> = [];
      for await (const pair of asCompleted([bad], { withResults: true, raiseErrors: false })) pairs.push(pair);
      expect(pairs[0]![0]).toBe(bad);
      expect(pairs[0]![1]).toBeInstanceOf(RemoteError);
    });
  });

  test('a worker leaving cleanly mid-run: its tasks rerun elsewhere, results correct', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const fs = client.map((x: number) => new Promise<number>((r) => setTimeout(() => r(x * 2), 40)), Array.from({ length: 30 }, (_, i) => i));
      await until(() => fs.filter((f) => f.done()).length >= 4, 10_000, 'some tasks to finish');
      await workers[1]!.close();
      expect(await client.gather(fs)).toEqual(Array.from({ length: 30 }, (_, i) => i * 2));
      const info = await client.schedulerInfo();
      expect(Object.keys(info.workers)).toEqual([workers[0]!.address]);
    });
  });

  test('gathering finished results whose holder has left waits for the scheduler to compute them again, as the reference reschedules', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client, workers }) => {
      const [leaving, staying] = workers as [Worker, Worker];
      const slowBytes = async (ms: number, n: number): Promise<Uint8Array> => {
        await new Promise((r) => setTimeout(r, ms));
        return new Uint8Array(n).fill(7);
      };
      const onLeaving = client.options({ workers: [leaving.address], allowOtherWorkers: true, pure: false });
      const f = onLeaving.submit(slowBytes, 300, 1000);
      const g = onLeaving.submit(slowBytes, 300, 2000);
      await wait([f, g]); // finished, not fetched
      await leaving.close(); // the scheduler computes both again on the other worker; the client hears nothing
      // Two fetches of each at once: the second waits for the same recomputation as the first.
      const [viaGather, viaGather2, viaResult, viaResult2] = await Promise.all([client.gather([f]), client.gather([f, g]), g.result(), f.result()]);
      expect(viaGather[0]!.byteLength).toBe(1000);
      expect(viaGather2.map((v) => v.byteLength)).toEqual([1000, 2000]);
      expect(viaResult.byteLength).toBe(2000);
      expect(viaResult2.byteLength).toBe(1000);
      expect([f.status, g.status]).toEqual(['finished', 'finished']);
      expect((await client.whoHas([f, g]))[f.key]).toEqual([staying.address]);
    });
  });

  test('result({ timeout }) bounds the wait for a lost result to be computed again, and gather({ timeout }) too; closing the client then cancels', async () => {
    await withCluster({ nWorkers: 1 }, async ({ client, workers }) => {
      const make = (n: number) => new Uint8Array(n);
      const f = client.submit(make, 1000);
      const g = client.submit(make, 2000);
      await wait([f, g]);
      await workers[0]!.close(); // no worker left to compute them again
      const started = Date.now();
      await expect(f.result({ timeout: 300 })).rejects.toThrow(/timed out after 300 ms/);
      await expect(client.gather([g], { timeout: 300 })).rejects.toThrow(/timed out after 300 ms/);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect([f.status, g.status]).toEqual(['pending', 'pending']); // waiting for a worker, like any task
      const waiting = expect(f.result()).rejects.toThrow(/the client closed/);
      await client.close();
      await waiting;
    });
  });

  test('lost results fetched together do not wait for each other to be computed again', async () => {
    await withCluster({ workers: [{ nthreads: 2, name: 'leaving' }, { nthreads: 2, name: 'staying' }] }, async ({ client, workers }) => {
      const [leaving] = workers as [Worker, Worker];
      // Quick on the first worker; computed again on the other one, it takes `slowMs`.
      const bytes = async (slowMs: number, n: number): Promise<Uint8Array> => {
        const { getWorker } = require('@dd/client');
        if (getWorker().name !== 'leaving') await new Promise((r) => setTimeout(r, slowMs));
        return new Uint8Array(n);
      };
      const onLeaving = client.options({ workers: ['leaving'], allowOtherWorkers: true, pure: false });
      const quick = onLeaving.submit(bytes, 500, 10); // beyond the gather's own short retries
      const slow = onLeaving.submit(bytes, 3_000, 20);
      await wait([quick, slow]);
      await leaving.close();
      // One batch of fetches (same tick): the quick one must not wait for the slow one.
      const [q, s2] = [quick.result({ timeout: 2_000 }), slow.result()];
      expect((await q).byteLength).toBe(10);
      expect(slow.status).toBe('pending'); // still being computed again
      expect((await s2).byteLength).toBe(20);
    });
  });

  test('functions by module reference', async () => {
    await withCluster({ nWorkers: 1 }, async ({ client }) => {
      const mod = join(__dirname, 'fixtures', 'tasks.js');
      const a = client.submit(ref<(x: number) => number>(mod, 'inc'), 1);
      const b = client.submit(ref<(a: number, b: number) => number>(mod, 'add'), a, 10);
      expect(await b).toBe(12);
      expect(a.key).toMatch(/^inc-/);
    });
  });

  test('cluster queries', async () => {
    await withCluster({ workers: [{ nthreads: 2, name: 'alpha', resources: { GPU: 2 } }, { nthreads: 1, name: 'beta' }] }, async ({ client, workers }) => {
      const info = await client.schedulerInfo();
      expect(info.address).toBe(client.schedulerAddress);
      const byName = Object.fromEntries(Object.values(info.workers).map((w) => [w.name, w]));
      expect(byName['alpha']).toMatchObject({ nthreads: 2, resources: { GPU: 2 } });
      expect(await client.nthreads()).toEqual({ [workers[0]!.address]: 2, [workers[1]!.address]: 1 });
      await client.waitForWorkers(2, { timeout: 1000 });
      await expect(client.waitForWorkers(3, { timeout: 200 })).rejects.toThrow(/workers/);
      const x = client.submit(inc, 1);
      await x;
      const hw = await client.hasWhat();
      expect(Object.values(hw).flat()).toContain(x.key);
      expect(await client.processing()).toBeDefined();
    });
  });

  test('losing the scheduler: pending futures become lost, the client tries to reconnect', async () => {
    await withCluster({ nWorkers: 1 }, async ({ client, scheduler }) => {
      const slow = client.submit(sleepThen<number>, 5000, 1);
      await new Promise((r) => setTimeout(r, 100));
      await scheduler.close();
      await until(() => slow.done(), 5000, 'the pending future to be settled');
      expect(slow.status).toBe('lost');
      await expect(slow.result()).rejects.toThrow(/lost/);
      // It keeps trying to reconnect (reconnectTimeout); a submission waits for the connection.
      expect(client.connected).toBe(false);
      expect(client.status).toBe('running');
      const queued = client.submit(inc, 1);
      await client.close();
      expect(queued.status).toBe('cancelled');
    });
  });

  test('await using closes the client', async () => {
    await withCluster({ nWorkers: 1, client: false }, async ({ scheduler }) => {
      let kept: Client | undefined;
      {
        await using client = await Client.connect(scheduler.address);
        kept = client;
        expect(await client.submit(inc, 1)).toBe(2);
      }
      expect(kept.status).toBe('closed');
    });
  });
});
