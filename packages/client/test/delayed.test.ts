// delayed / compute / persist against the fake scheduler (no sockets), and on a cluster.

import { type UpdateGraphMsg } from '@dd/protocol';
import { Client, ClientClosedError, defaultClient, delayed, Delayed, FunctionSerializationError, Future, isDelayed } from '../src/index';
import { FakeScheduler, connectFake, withFake } from './fake-scheduler';
import { withCluster } from './harness';
import { inc, add, sum } from './task-functions';

jest.setTimeout(60_000);

function describeObj(o: { a: number; b: number[] }): string {
  return `${o.a}:${o.b.join(',')}`;
}

const graphs = (fake: FakeScheduler): UpdateGraphMsg[] => fake.ops('update-graph') as UpdateGraphMsg[];
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('delayed', () => {
  test('lazy, deterministic keys (the same key submit gives), not thenable', async () => {
    await withFake(async (client, fake) => {
      const a = delayed(inc)(1);
      const b = delayed(inc)(1);
      expect(a).toBeInstanceOf(Delayed);
      expect(isDelayed(a)).toBe(true);
      expect(a.key).toMatch(/^inc-[0-9a-f]{32}$/);
      expect(b.key).toBe(a.key);
      expect(delayed(inc)(2).key).not.toBe(a.key);
      expect(delayed(inc, { pure: false })(1).key).not.toBe(a.key);
      expect(delayed(inc, { name: 'step' })(1).key).toMatch(/^step-[0-9a-f]{32}$/);
      expect('then' in a).toBe(false);
      // A call on a Delayed is keyed by the Delayed's key.
      expect(delayed(add)(a, 1).key).toBe(delayed(add)(b, 1).key);
      await tick();
      expect(fake.sent).toHaveLength(0);
      expect(client.submit(inc, 1).key).toBe(a.key);
    });
  });

  test('client.compute returns a Future at once; only the computed key is wanted', async () => {
    await withFake(async (client, fake) => {
      const t = delayed(add)(delayed(inc)(1), 10);
      const f = client.compute(t);
      expect(f).toBeInstanceOf(Future);
      expect(f.key).toBe(t.key);
      expect(f.status).toBe('pending');
      expect(await f).toBe(12);
      const [msg] = graphs(fake);
      expect(msg!.keys).toEqual([t.key]);
      expect(msg!.tasks.map((x) => x.key)).toEqual([delayed(inc)(1).key, t.key]);
    });
  });

  test('cancelling computed graphs before they are sent drops their tasks, but not what another graph still needs', async () => {
    await withFake(async (client, fake) => {
      const x = delayed(inc)(1);
      const y = delayed(add)(x, 1);
      const z = delayed(add)(x, 2);
      const w = delayed(inc)(100);
      const v = delayed(add)(w, 1);
      const [fy, fz] = client.compute([y, z]);
      const fv = client.compute(v);
      await client.cancel([fy!, fv]); // in the same tick: nothing was sent yet
      expect([fy!.status, fv.status]).toEqual(['cancelled', 'cancelled']);
      expect(await fz!).toBe(4);
      const sent = graphs(fake);
      expect(sent.flatMap((m) => m.tasks.map((t) => t.key)).sort()).toEqual([x.key, z.key].sort());
      expect(sent.flatMap((m) => m.keys)).toEqual([z.key]);
      expect(fake.calls.filter((c) => c.op === 'cancel')).toEqual([]);
    });
  });

  test('cancelling a queued graph keeps what another Future holds, and a part already sent is cancelled by rpc', async () => {
    await withFake(async (client, fake) => {
      fake.auto = false;
      const x = delayed(inc)(1);
      const fx = client.compute(x);
      await new Promise((r) => setImmediate(r)); // sent
      fake.run();
      expect(await fx).toBe(2);
      // A graph resends its parts: x goes again inside y's graph, queued with it.
      const fy = client.compute(delayed(add)(x, 1));
      await client.cancel([fy]);
      expect(fy.status).toBe('cancelled');
      expect(fx.status).toBe('finished');
      expect(await fx).toBe(2);
      expect(fake.calls.filter((c) => c.op === 'cancel')).toEqual([]);

      // A key the scheduler has, queued again in another graph, is cancelled by rpc.
      const s = delayed(inc)(10);
      const fs = client.compute(s);
      await new Promise((r) => setImmediate(r)); // sent, not run
      client.compute(delayed(add)(s, 1));
      await client.cancel([fs]);
      expect(fake.calls.filter((c) => c.op === 'cancel').map((c) => c.args?.['keys'])).toEqual([[s.key]]);
      expect(fs.status).toBe('cancelled');
    });
  });

  test('compute of an array gives Futures; shared parts are sent once', async () => {
    await withFake(async (client, fake) => {
      const x = delayed(inc)(1);
      const y = delayed(add)(x, 1);
      const z = delayed(add)(x, 2);
      const fs = client.compute([y, z, y]);
      expect(fs).toHaveLength(3);
      expect(await client.gather(fs)).toEqual([3, 4, 3]);
      const [msg] = graphs(fake);
      expect(msg!.tasks.map((t) => t.key).sort()).toEqual([x.key, y.key, z.key].sort());
      expect(msg!.keys).toEqual([y.key, z.key]);
    });
  });

  test('nested structures, delayed(value), delayed(future), Futures inside calls', async () => {
    await withFake(async (client) => {
      const xs = [1, 2, 3].map((i) => delayed(inc)(i));
      expect(await delayed(sum)(xs).compute({ client })).toBe(9);
      expect(await delayed(describeObj)({ a: xs[0]!, b: [xs[1]!, 7] }).compute({ client })).toBe('2:3,7');
      const v = delayed([xs[0], { k: xs[2], lit: 'x' }]);
      expect(v.key).toMatch(/^Array-[0-9a-f]{32}$/);
      expect(await v.compute({ client })).toEqual([2, { k: 4, lit: 'x' }]);
      expect(await delayed(5).compute({ client })).toBe(5);
      expect(delayed(5).key).toBe(delayed(5).key);
      expect(delayed(v)).toBe(v);
      const f = client.submit(inc, 100);
      expect(await delayed(add)(f, xs[0]!).compute({ client })).toBe(103);
      const df = delayed(f);
      expect(df.key).toBe(f.key);
      expect(await delayed(inc)(df).compute({ client })).toBe(102);
      expect(await df.compute({ client })).toBe(101);
    });
  });

  test('persist: the same value backed by a running Future; later graphs build on it', async () => {
    await withFake(async (client, fake) => {
      const t = delayed(add)(delayed(inc)(1), 10);
      const p = client.persist(t);
      expect(p).toBeInstanceOf(Delayed);
      expect(p.key).toBe(t.key);
      expect(p.future).toBeInstanceOf(Future);
      expect(await p.future!).toBe(12);
      const n = graphs(fake).length;
      const u = delayed(inc)(p);
      expect(await client.compute(u)).toBe(13);
      const last = graphs(fake)[n]!;
      expect(last.tasks.map((x) => x.key)).toEqual([u.key]);
      expect(last.tasks[0]!.dependencies).toEqual([t.key]);
      // Persisting again adds nothing to compute.
      const [p2] = client.persist([p]);
      expect(p2!.key).toBe(t.key);
      await tick();
      expect(graphs(fake)).toHaveLength(n + 1);
    });
  });

  test('compute() and persist() use the most recently connected open client', async () => {
    const A = await connectFake();
    const B = await connectFake();
    try {
      expect(defaultClient()).toBe(B.client);
      expect(await delayed(inc)(1).compute()).toBe(2);
      expect(graphs(B.fake)).toHaveLength(1);
      expect(graphs(A.fake)).toHaveLength(0);
      await B.client.close();
      expect(defaultClient()).toBe(A.client);
      const p = delayed(inc)(2).persist();
      expect(await p.future!).toBe(3);
      expect(graphs(A.fake)).toHaveLength(1);
      await A.client.close();
      expect(() => defaultClient()).toThrow(ClientClosedError);
      await expect(delayed(inc)(3).compute()).rejects.toThrow(/no client is connected/);
    } finally {
      await A.client.close();
      await B.client.close();
    }
  });

  test('errors: compute of a non-Delayed, functions that cannot travel', async () => {
    await withFake(async (client) => {
      expect(() => client.compute(5 as never)).toThrow(/expected a Delayed or an array of them, got number/);
      expect(() => client.compute([delayed(1), 'x'] as never)).toThrow(/got string at index 1/);
      expect(() => delayed(inc.bind(null))).toThrow(FunctionSerializationError);
    });
  });

  test('on a cluster: a delayed tree reduction, persist, and compute with the default client', async () => {
    await withCluster({ nWorkers: 2 }, async ({ client }) => {
      let level = Array.from({ length: 64 }, (_, i) => delayed(inc)(i));
      while (level.length > 1) {
        const next: Delayed<number>[] = [];
        for (let i = 0; i < level.length; i += 2) next.push(delayed(add)(level[i]!, level[i + 1]!));
        level = next;
      }
      const total = level[0]!;
      expect(await client.compute(total)).toBe((64 * 65) / 2);
      const p = client.persist(total);
      expect(await delayed(inc)(p).compute()).toBe((64 * 65) / 2 + 1);
      expect(Object.keys(await client.whoHas(p.future!))).toEqual([total.key]);
    });
  });
});
