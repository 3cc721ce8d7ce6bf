// Client logic against a fake scheduler (no sockets): batching, keys, refcounts, futures,
// gather shapes, errors, scatter, cancel, wait/asCompleted.

import { asCompleted, CancelledError, Client, fireAndForget, Future, RemoteError, wait } from '../src/index';
import { FakeScheduler, WORKER, withFake } from './fake-scheduler';
import { inc, add } from './task-functions';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const end = Date.now() + timeoutMs; !cond(); await tick()) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

describe('Client with a fake scheduler', () => {
  test('submit returns a Future at once; await gives the value', async () => {
    await withFake(async (client, fake) => {
      const f = client.submit(inc, 1);
      expect(f).toBeInstanceOf(Future);
      expect(f.status).toBe('pending');
      expect(f.key).toMatch(/^inc-[0-9a-f]{32}$/);
      expect(await f).toBe(2);
      expect(f.status).toBe('finished');
      expect(f.done()).toBe(true);
      expect(fake.ops('update-graph')).toHaveLength(1);
    });
  });

  test('many submits in one tick are one update-graph, in order', async () => {
    await withFake(async (client, fake) => {
      const fs = client.map(inc, [1, 2, 3, 4]);
      const g = client.submit(add, fs[0]!, fs[1]!);
      await tick();
      const ug = fake.ops('update-graph');
      expect(ug).toHaveLength(1);
      const msg = ug[0]! as { tasks: Array<{ key: string; dependencies: string[]; order: number }>; keys: string[] };
      expect(msg.tasks.map((t) => t.key)).toEqual([...fs.map((f) => f.key), g.key]);
      expect(msg.tasks.map((t) => t.order)).toEqual([0, 1, 2, 3, 4]);
      expect(msg.tasks[4]!.dependencies).toEqual([fs[0]!.key, fs[1]!.key]);
      expect(await client.gather(fs)).toEqual([2, 3, 4, 5]);
      expect(await g).toBe(5);
    });
  });

  test('a release and the next submission in one tick leave in one send, in order', async () => {
    await withFake(async (client, fake) => {
      const impure = client.options({ pure: false });
      const f = impure.submit(inc, 1);
      expect(await f).toBe(2);
      f.release();
      const g = impure.submit(inc, 2);
      await tick();
      expect(fake.sends[fake.sends.length - 1]).toEqual(['client-releases-keys', 'update-graph']);
      expect(await g).toBe(3);
    });
  });

  test('results that come inline with key-in-memory need no get-data; a cancel forgets them', async () => {
    await withFake(async (client, fake) => {
      fake.inline = true;
      const f = client.submit(inc, 1);
      expect(await f).toBe(2);
      expect(await client.gather(client.map(inc, [1, 2, 3]))).toEqual([2, 3, 4]);
      expect(fake.calls.filter((c) => c.op === 'get-data')).toHaveLength(0);
      await client.cancel([f]);
      await expect(f.result()).rejects.toBeInstanceOf(CancelledError);
    });
  });

  test('different priorities go in separate update-graph messages, in submission order', async () => {
    await withFake(async (client, fake) => {
      client.submit(inc, 1);
      client.options({ priority: 5 }).submit(inc, 2);
      client.submit(inc, 3);
      await tick();
      const ug = fake.ops('update-graph') as Array<{ userPriority?: number; tasks: unknown[] }>;
      expect(ug.map((m) => [m.userPriority, m.tasks.length])).toEqual([[undefined, 1], [5, 1], [undefined, 1]]);
    });
  });

  test('option values the scheduler would refuse are rejected when given, naming the option', async () => {
    await withFake(async (client) => {
      expect(() => client.options({ priority: NaN })).toThrow('options(): option priority must be a finite number, got NaN');
      expect(() => client.options({ priority: 'high' as unknown as number })).toThrow('option priority must be a finite number, got "high"');
      expect(() => client.options({ retries: -1 })).toThrow('option retries must be a non-negative integer');
      expect(() => client.options({ fifoTimeout: Infinity })).toThrow('option fifoTimeout');
      expect(() => client.options({ resources: { GPU: '1' as unknown as number } })).toThrow('option resources.GPU must be a finite number >= 0, got "1"');
      expect(() => client.options({ workers: [1] as unknown as string[] })).toThrow('option workers');
      expect(() => client.options({ annotations: 'x' as unknown as Record<string, unknown> })).toThrow('option annotations');
      expect(() => client.options({ priority: 1 }).options({ priority: Infinity })).toThrow('option priority');
      await expect(client.get({ a: [inc, 1] }, 'a', { priority: NaN })).rejects.toThrow('graph options: option priority');
      // Valid ones still work.
      expect(client.options({ priority: -3, retries: 2, fifoTimeout: 0, resources: { GPU: 1 }, workers: 'w', annotations: {} })).toBeDefined();
    });
  });

  test('pure submissions dedupe; pure: false gives fresh keys', async () => {
    await withFake(async (client, fake) => {
      const a = client.submit(inc, 10);
      const b = client.submit(inc, 10);
      expect(a.key).toBe(b.key);
      expect(await a).toBe(11);
      expect(await b).toBe(11);
      expect(fake.runs).toBe(1);
      const c = client.options({ pure: false }).submit(inc, 10);
      const d = client.options({ pure: false }).submit(inc, 10);
      expect(c.key).not.toBe(d.key);
      expect(c.key).toMatch(/^inc-[0-9a-f]{32}$/);
      expect(client.options({ key: 'mine' }).submit(inc, 1).key).toBe('mine');
    });
  });

  test('futures nested in arrays and objects become dependencies', async () => {
    await withFake(async (client, fake) => {
      const a = client.submit(inc, 1);
      const b = client.submit(inc, 2);
      const total = client.submit((o: { xs: number[]; y: { z: number } }) => o.xs[0]! + o.xs[1]! + o.y.z, { xs: [a, b], y: { z: a } } as never);
      expect(await total).toBe(2 + 3 + 2);
      const ug = fake.ops('update-graph')[0] as { tasks: Array<{ dependencies: string[] }> };
      expect(ug.tasks[2]!.dependencies.sort()).toEqual([a.key, b.key].sort());
    });
  });

  test('gather keeps nested shapes and uses one get-data per worker', async () => {
    await withFake(async (client, fake) => {
      const [a, b, c] = client.map(inc, [1, 2, 3]);
      const out = await client.gather([a!, [b!, { c: c!, n: 7 }], 'x']);
      expect(out).toEqual([2, [3, { c: 4, n: 7 }], 'x']);
      expect(fake.calls.filter((c) => c.op === 'get-data')).toHaveLength(1);
    });
  });

  test('awaits in the same tick share one gather', async () => {
    await withFake(async (client, fake) => {
      const fs = client.map(inc, [1, 2, 3, 4, 5]);
      await wait(fs);
      const before = fake.calls.filter((c) => c.op === 'get-data').length;
      expect(await Promise.all(fs)).toEqual([2, 3, 4, 5, 6]);
      expect(fake.calls.filter((c) => c.op === 'get-data').length - before).toBe(1);
    });
  });

  test('errors reject with RemoteError, dependents too; gather skip leaves them out', async () => {
    await withFake(async (client) => {
      const bad = client.submit((x: number) => {
        if (x > 0) throw new TypeError('boom');
        return x;
      }, 1);
      const dep = client.submit(inc, bad);
      const ok = client.submit(inc, 5);
      await expect(bad.result()).rejects.toThrow(RemoteError);
      const err = (await bad.exception()) as RemoteError;
      expect(err.remoteName).toBe('TypeError');
      expect(err.remoteMessage).toBe('boom');
      expect(err.remoteStack).toContain('boom');
      expect(await bad.traceback()).toContain('TypeError: boom');
      expect(bad.status).toBe('error');
      await expect(dep).rejects.toMatchObject({ remoteName: 'TypeError', remoteMessage: 'boom' });
      await expect(client.gather([ok, bad])).rejects.toThrow('boom');
      expect(await client.gather([ok, bad, dep], { errors: 'skip' })).toEqual([6]);
      expect(await client.gather({ ok, bad }, { errors: 'skip' })).toEqual({ ok: 6 });
    });
  });

  test('a function using an outer variable fails with an explanation', async () => {
    await withFake(async (client) => {
      const offset = 10;
      const f = client.submit((x: number) => x + offset, 1);
      const err = (await f.exception()) as RemoteError;
      expect(err.remoteName).toBe('ReferenceError');
      expect(err.message).toMatch(/enclosing scope/);
      expect(err.message).toMatch(/"offset"/);
    });
  });

  test('release sends client-releases-keys once the last future for the key is gone', async () => {
    await withFake(async (client, fake) => {
      const a = client.submit(inc, 1);
      const b = client.submit(inc, 1);
      await a;
      a.release();
      a.release(); // idempotent
      await tick();
      expect(fake.ops('client-releases-keys')).toHaveLength(0);
      b.release();
      await tick();
      expect(fake.ops('client-releases-keys').map((m) => (m as { keys: string[] }).keys)).toEqual([[a.key]]);
      expect(client.refcounts().has(a.key)).toBe(false);
    });
  });

  test('futureOf an existing key sends client-desires-keys', async () => {
    await withFake(async (client, fake) => {
      const a = client.submit(inc, 1);
      await a;
      const again = client.futureOf<number>(a.key);
      await tick();
      expect(fake.ops('client-desires-keys')).toHaveLength(0); // already held
      fake.data.set('external', 42);
      const ext = client.futureOf<number>('external');
      expect(await ext).toBe(42);
      expect(fake.ops('client-desires-keys')).toHaveLength(1);
      expect(await again).toBe(2);
    });
  });

  test('garbage-collected futures are released', async () => {
    // gc() without --expose-gc on the command line: enable the flag, then fetch gc from a fresh context.
    require('node:v8').setFlagsFromString('--expose-gc');
    const gc = require('node:vm').runInNewContext('gc') as () => void;
    await withFake(async (client, fake) => {
      (() => {
        client.submit(inc, 99);
      })();
      await tick();
      // Collection and the FinalizationRegistry callback after it are not immediate (and slower
      // when the suite runs on busy cores): up to 2 s, leaving as soon as the release is sent.
      for (let i = 0; i < 100 && fake.ops('client-releases-keys').length === 0; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(fake.ops('client-releases-keys')).toHaveLength(1);
    });
  });

  test('a future released by hand and then collected does not release its key twice', async () => {
    require('node:v8').setFlagsFromString('--expose-gc');
    const gc = require('node:vm').runInNewContext('gc') as () => void;
    await withFake(async (client, fake) => {
      const kept = client.submit(inc, 7);
      (() => {
        client.submit(inc, 7).release(); // the same key (pure): two futures, one released
      })();
      await tick();
      for (let i = 0; i < 20; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      // The kept future still holds the key.
      expect(fake.ops('client-releases-keys')).toHaveLength(0);
      expect(await kept).toBe(8);
      kept.release();
      await tick();
      expect(fake.ops('client-releases-keys')).toHaveLength(1);
    });
  });

  test('scatter: array -> futures at once, pending until stored', async () => {
    await withFake(async (client, fake) => {
      const [x, y] = client.scatter([1, { a: 2 }]);
      expect(x!.status).toBe('pending');
      expect(await x!).toBe(1);
      expect(await y!).toEqual({ a: 2 });
      const one = client.scatter('hello');
      expect(one).toBeInstanceOf(Future);
      expect(await client.submit((s: string) => s.toUpperCase(), one)).toBe('HELLO');
      const sched = fake.calls.filter((c) => c.op === 'update-data' && c.worker === undefined);
      expect(sched.length).toBe(2);
      expect((sched[0]!.args as { whoHas: Record<string, string[]> }).whoHas[x!.key]).toEqual([WORKER]);
      expect(client.scatter([1]).map((f) => f.key)).toEqual([x!.key]); // by content
    });
  });

  test('cancel makes futures cancelled and result() reject', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const f = client.submit(inc, 1);
      await tick();
      await client.cancel([f]);
      expect(f.status).toBe('cancelled');
      expect(f.cancelled()).toBe(true);
      await expect(f.result()).rejects.toBeInstanceOf(CancelledError);
      expect(() => client.submit(inc, f)).toThrow(CancelledError);
      // a new submission of the same key is a fresh task
      const g = client.submit(inc, 1);
      expect(g.status).toBe('pending');
      await tick();
      fake.run();
      expect(await g).toBe(2);
    });
  });

  test('a cancel whose rpc fails leaves no future hanging: the futures go on, or are lost if their key was submitted again', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const fakeCalls = fake as unknown as { onCall(op: string, args: Record<string, unknown>): unknown };
      const onCall = fakeCalls.onCall.bind(fake);
      let failCancel: (err: Error) => void = () => {};
      fakeCalls.onCall = (op, args) => (op === 'cancel' ? new Promise((_resolve, reject) => (failCancel = reject)) : onCall(op, args));

      const kept = client.submit(inc, 5);
      const resubmitted = client.submit(inc, 1);
      await tick();
      const cancelling = client.cancel([kept, resubmitted]);
      const again = client.submit(inc, 1); // while the cancel is in flight: a new computation of the key
      expect(again.key).toBe(resubmitted.key);
      await tick();
      expect(fake.ops('update-graph')).toHaveLength(1); // the new one waits for the cancel
      failCancel(new Error('connection reset'));
      await expect(cancelling).rejects.toThrow('connection reset');
      expect(resubmitted.status).toBe('lost');
      await expect(resubmitted.result()).rejects.toThrow(/its cancel failed \(connection reset\) after the key was submitted again/);
      await tick();
      expect(fake.ops('update-graph')).toHaveLength(2);
      fake.run();
      expect(await again.result({ timeout: 5_000 })).toBe(2);
      expect(await kept.result({ timeout: 5_000 })).toBe(6); // not cancelled, still followed
    });
  });

  /** A fake whose workers' update-data waits until `storeData()`: a scatter held in progress. */
  function holdScatters(fake: FakeScheduler): { storeData: () => void; order: string[] } {
    const hooks = fake as unknown as {
      onWorkerCall(op: string, args: Record<string, unknown>): unknown;
      onCall(op: string, args: Record<string, unknown>): unknown;
      onStream(msg: { op: string }): void;
    };
    const onWorkerCall = hooks.onWorkerCall.bind(fake);
    const onCall = hooks.onCall.bind(fake);
    const onStream = hooks.onStream.bind(fake);
    let storeData: () => void = () => {};
    const stored = new Promise<void>((resolve) => (storeData = resolve));
    const order: string[] = [];
    hooks.onWorkerCall = async (op, args) => {
      if (op === 'update-data') await stored;
      return onWorkerCall(op, args);
    };
    hooks.onCall = (op, args) => {
      if (op === 'cancel') order.push(`cancel ${(args['keys'] as string[]).join(',')}`);
      return onCall(op, args);
    };
    hooks.onStream = (msg) => {
      if (msg.op === 'update-graph') order.push(`update-graph ${(msg as unknown as { keys: string[] }).keys.join(',')}`);
      onStream(msg);
    };
    return { storeData, order };
  }

  test('a cancel of tasks not sent yet (held back until a scatter is stored) cancels them here, with their dependents, without waiting', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const { storeData, order } = holdScatters(fake);
      const data = client.scatter(41);
      const held = client.submit(inc, data);
      const dependent = client.submit(inc, held);
      const other = client.submit(inc, 5); // queued in the same batch, needs no scatter
      await tick();
      expect(order).toEqual([]); // held back: the scheduler does not know the data yet
      await client.cancel([held]); // does not wait for the scatter
      expect([held.status, dependent.status]).toEqual(['cancelled', 'cancelled']);
      await expect(dependent.result()).rejects.toThrow(`its dependency ${held.key} was cancelled`);
      expect(order).toEqual([]); // no cancel rpc: the scheduler never heard of them
      storeData();
      await until(() => order.length > 0, 5_000, 'the rest of the queue to go out');
      expect(order).toEqual([`update-graph ${other.key}`]);
      fake.run();
      expect(fake.runs).toBe(1);
      expect(await other.result({ timeout: 5_000 })).toBe(6);
    });
  });

  test('cancelling data still being scattered: it and its held-back dependents are cancelled here; the data is released once stored', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const { storeData, order } = holdScatters(fake);
      const data = client.scatter(7);
      const dependent = client.submit(inc, data);
      await tick();
      await client.cancel([data]);
      expect([data.status, dependent.status]).toEqual(['cancelled', 'cancelled']);
      await expect(dependent.result()).rejects.toThrow(`its dependency ${data.key} was cancelled`);
      storeData();
      await until(() => fake.ops('client-releases-keys').some((m) => m.op === 'client-releases-keys' && m.keys.includes(data.key)), 5_000, 'the stored data to be released');
      expect(order).toEqual([]); // neither the dependent nor a cancel rpc went out
      expect(fake.wanted.has(data.key)).toBe(false);
    });
  });

  test('cancelling an old Future again leaves the new computation of its key alone, sent or not', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const a = client.submit(inc, 1);
      await a.cancel(); // not sent yet: cancelled here
      const b = client.submit(inc, 1); // the same pure key: a new computation, queued
      await a.cancel();
      expect(b.status).toBe('pending');
      await tick(); // b is sent
      await a.cancel();
      expect(fake.calls.filter((c) => c.op === 'cancel')).toEqual([]);
      fake.run();
      expect(await b.result({ timeout: 5_000 })).toBe(2);
    });
  });

  test('a key cancelled before it was sent can be submitted again at once', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const { storeData, order } = holdScatters(fake);
      const data = client.scatter(1);
      const held = client.submit(inc, data);
      const cancelling = client.cancel([held]);
      const again = client.submit(inc, data); // the same key: a new computation
      expect(again.key).toBe(held.key);
      await cancelling;
      expect(held.status).toBe('cancelled');
      storeData();
      await until(() => order.length > 0, 5_000, 'the resubmission to go out');
      expect(order).toEqual([`update-graph ${again.key}`]);
      fake.run();
      expect(await again.result({ timeout: 5_000 })).toBe(2);
    });
  });

  test('a cancel of sent tasks goes after a stream barrier; closing the client meanwhile rejects it instead of leaving it pending', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const hooks = fake as unknown as { onStream(msg: { op: string }): void };
      const onStream = hooks.onStream.bind(fake);
      let barriers = 0;
      hooks.onStream = (msg) => {
        if (msg.op === 'stream-barrier') barriers++; // never answered, as by a scheduler gone quiet
        else onStream(msg);
      };
      const f = client.submit(inc, 1);
      await tick();
      const cancelling = client.cancel([f]);
      await tick();
      expect(barriers).toBe(1);
      expect(fake.calls.filter((c) => c.op === 'cancel')).toHaveLength(0);
      await client.close();
      await expect(cancelling).rejects.toThrow(/closed/);
    });
  });

  test('retry reruns an erred task', async () => {
    await withFake(async (client, fake) => {
      const f = client.submit(() => {
        const g = globalThis as { __ddFlaky?: number };
        g.__ddFlaky = (g.__ddFlaky ?? 0) + 1;
        if (g.__ddFlaky === 1) throw new Error('first time');
        return g.__ddFlaky;
      });
      const dep = client.submit(inc, f);
      await expect(dep).rejects.toThrow('first time');
      await f.retry();
      await dep.retry();
      expect(await f).toBe(2);
      expect(await dep).toBe(3);
      expect(fake.ops('client-releases-keys').length).toBeGreaterThan(0);
    });
  });

  test('wait ALL_COMPLETED / FIRST_COMPLETED and timeout', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const [a, b] = client.map(inc, [1, 2]);
      await tick();
      await expect(wait([a!, b!], { timeout: 30 })).rejects.toThrow(/not done/);
      const first = wait([a!, b!], { returnWhen: 'FIRST_COMPLETED' });
      fake.tasks.delete(b!.key); // only a can finish
      fake.run();
      const { done, notDone } = await first;
      expect([...done]).toEqual([a]);
      expect([...notDone]).toEqual([b]);
      // Something other than a Future is named, not met with "f.done is not a function".
      await expect(wait([a!, 1 as unknown as Future])).rejects.toThrow('wait: expected Futures, got 1 at index 1');
      expect(() => asCompleted(['x' as unknown as Future])).toThrow('asCompleted: expected Futures, got "x"');
    });
  });

  test('asCompleted yields futures as they finish; add, batches, withResults', async () => {
    await withFake(async (client) => {
      const fs = client.map(inc, [1, 2, 3]);
      const ac = asCompleted(fs);
      expect(ac.count()).toBe(3);
      const seen: number[] = [];
      let added = false;
      for await (const f of ac) {
        seen.push((await f) as number);
        if (!added) {
          added = true;
          ac.add(client.submit(inc, 10));
        }
      }
      expect(seen.sort((x, y) => x - y)).toEqual([2, 3, 4, 11]);

      const pairs: Array<[Future<number>, number]> = [];
      for await (const p of asCompleted(client.map(inc, [5, 6]), { withResults: true })) pairs.push(p);
      expect(pairs.map((p) => p[1]).sort()).toEqual([6, 7]);

      let total = 0;
      for await (const batch of asCompleted(client.map(inc, [7, 8, 9])).batches()) total += batch.length;
      expect(total).toBe(3);
    });
  });

  test('fireAndForget keeps the task wanted until it is done', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const f = client.submit(inc, 41);
      fireAndForget(f);
      f.release();
      await tick();
      expect(fake.ops('client-releases-keys')).toHaveLength(0);
      expect(fake.ops('client-desires-keys')).toMatchObject([{ client: 'fire-and-forget', keys: [f.key] }]);
      fake.run();
      await new Promise((r) => setTimeout(r, 10));
      expect(fake.ops('client-releases-keys')).toHaveLength(1);
    });
  });

  test('result timeout', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const f = client.submit(inc, 1);
      await expect(f.result({ timeout: 20 })).rejects.toMatchObject({ name: 'TimeoutError' });
    });
  });

  test('closed client: pending futures cancelled, submit throws; await using', async () => {
    const fake = new FakeScheduler();
    fake.auto = false;
    let f: Future | undefined;
    let c: Client | undefined;
    {
      await using client = await Client.connect('fake://s', { link: fake.link, heartbeatIntervalMs: 0 });
      c = client;
      f = client.submit(inc, 1);
    }
    expect(c.status).toBe('closed');
    expect(f.status).toBe('cancelled');
    expect(fake.ops('close-client')).toHaveLength(1);
    expect(() => c!.submit(inc, 2)).toThrow(/closed/);
  });
});
