// client.get on dask-style graphs, against the fake scheduler (no sockets): graph forms, key
// shapes, tuple keys, nested tasks, Futures inside graphs, what goes on the wire, and the
// errors raised before anything is sent.

import { decodeTaskSpec, type UpdateGraphMsg } from '@dd/protocol';
import { Client, GraphCycleError, InvalidGraphError, RemoteError } from '../src/index';
import { FakeScheduler, withFake } from './fake-scheduler';
import { inc, add, sum } from './task-functions';

function fail(x: unknown): never {
  throw new RangeError(`bad ${String(x)}`);
}

const graphs = (fake: FakeScheduler): UpdateGraphMsg[] => fake.ops('update-graph') as UpdateGraphMsg[];

describe('client.get', () => {
  test('the API example; only the asked key is wanted; results are released', async () => {
    await withFake(async (client, fake) => {
      const g = { x: [inc, 1], y: [add, 'x', 10], total: [sum, ['x', 'y']], unused: [inc, 100] };
      expect(await client.get(g, 'total')).toBe(2 + 12);
      const [msg] = graphs(fake);
      expect(msg!.keys).toEqual(['total']);
      // Culled (no "unused"), dependencies first.
      expect(msg!.tasks.map((t) => t.key)).toEqual(['x', 'y', 'total']);
      expect(msg!.tasks.find((t) => t.key === 'y')!.dependencies).toEqual(['x']);
      expect(new Set(msg!.tasks.find((t) => t.key === 'total')!.dependencies)).toEqual(new Set(['x', 'y']));
      expect(msg!.fifoTimeoutMs).toBe(60_000);
      expect(client.refcounts().size).toBe(0);
      await new Promise((r) => setImmediate(r));
      expect(fake.ops('client-releases-keys').flatMap((m) => (m as { keys: string[] }).keys)).toEqual(['total']);
    });
  });

  test('keys: one key, nested lists keep their shape, duplicates computed once', async () => {
    await withFake(async (client, fake) => {
      const g = { a: [inc, 1], b: [inc, 'a'], c: [add, 'a', 'b'] };
      expect(await client.get(g, ['a', ['b', ['c']], 'a'])).toEqual([2, [3, [5]], 2]);
      expect(graphs(fake)[0]!.keys).toEqual(['a', 'b', 'c']);
    });
  });

  test('tuple keys in a Map, encoded with wireKey, as keys and as references', async () => {
    await withFake(async (client, fake) => {
      const g = new Map<string | (string | number)[], unknown>([
        [['x', 0], [inc, 1]],
        [['x', 1], [inc, 2]],
        ['s', [sum, [['x', 0], ['x', 1]]]],
      ]);
      expect(await client.get(g, 's')).toBe(5);
      expect(await client.get(g, ['x', 1])).toBe(3);
      expect(await client.get(g, [['x', 0], ['x', 1], 's'])).toEqual([2, 3, 5]);
      const first = graphs(fake)[0]!;
      expect(first.tasks.map((t) => t.key)).toEqual(['["x",0]', '["x",1]', 's']);
      // The plain-object spelling of a tuple key is the same key.
      expect(await client.get({ '["x",0]': [inc, 41], y: [inc, ['x', 0]] }, 'y')).toBe(43);
    });
  });

  test('literal entries, nested structures, strings that are not keys, nested tasks', async () => {
    await withFake(async (client, fake) => {
      const g = {
        a: 1,
        b: ['a', 'a', 'not-a-key'],
        c: { p: 'a', q: [inc, 'a'], list: [[inc, 10], 'b'] },
        d: [sum, [[inc, 1], 'a', [add, [inc, 'a'], 100]]],
        alias: 'd',
      };
      expect(await client.get(g, ['a', 'b', 'c', 'd', 'alias'])).toEqual([
        1,
        [1, 1, 'not-a-key'],
        { p: 1, q: 2, list: [11, [1, 1, 'not-a-key']] },
        2 + 1 + 102,
        105,
      ]);
      // Nested tasks are tasks of their own, named after their function.
      const keys = graphs(fake)[0]!.tasks.map((t) => t.key);
      expect(keys.filter((k) => /^inc-[0-9a-f]{32}$/.test(k))).toHaveLength(4);
      expect(keys.filter((k) => /^add-[0-9a-f]{32}$/.test(k))).toHaveLength(1);
      // Same graph again: same generated keys (deterministic).
      await client.get(g, 'd');
      const again = graphs(fake)[1]!.tasks.map((t) => t.key);
      for (const k of again) expect(keys).toContain(k);
    });
  });

  test('Futures inside graphs are dependencies; tasks of a graph may depend on them', async () => {
    await withFake(async (client, fake) => {
      const f = client.submit(inc, 10);
      const [s] = client.scatter([5]);
      expect(await client.get({ y: [add, f, 1], z: [sum, [s, 'y', { deep: f }.deep]], w: f }, ['y', 'z', 'w'])).toEqual([12, 5 + 12 + 11, 11]);
      const msg = graphs(fake).find((m) => m.keys.includes('y'))!;
      expect(msg.tasks.find((t) => t.key === 'y')!.dependencies).toEqual([f.key]);
      const spec = decodeTaskSpec(msg.tasks.find((t) => t.key === 'y')!.spec);
      expect(spec.args).toEqual([{ __ddKey__: f.key }, 1]);
      // The futures the graph used are still ours.
      expect(f.status).toBe('finished');
      expect(client.refcounts().get(f.key)).toBe(1);
    });
  });

  test('graph order: a tree reduction is sent depth first', async () => {
    await withFake(async (client, fake) => {
      const g: Record<string, unknown> = {};
      for (let i = 0; i < 4; i++) {
        g[`load-${i}`] = [inc, i];
        g[`inc-${i}`] = [inc, `load-${i}`];
      }
      g['s01'] = [add, 'inc-0', 'inc-1'];
      g['s23'] = [add, 'inc-2', 'inc-3'];
      g['total'] = [add, 's01', 's23'];
      expect(await client.get(g, 'total')).toBe(2 + 3 + 4 + 5);
      expect(graphs(fake)[0]!.tasks.map((t) => t.key)).toEqual([
        'load-0', 'inc-0', 'load-1', 'inc-1', 's01', 'load-2', 'inc-2', 'load-3', 'inc-3', 's23', 'total',
      ]);
    });
  });

  test('a failing task rejects get with its RemoteError; the keys are released', async () => {
    await withFake(async (client) => {
      const err = await client.get({ a: [fail, 1], b: [inc, 'a'] }, 'b').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).remoteName).toBe('RangeError');
      expect((err as RemoteError).remoteMessage).toBe('bad 1');
      expect(client.refcounts().size).toBe(0);
    });
  });

  test('options: restrictions on every task, priority on the submission', async () => {
    await withFake(async (client, fake) => {
      await client.options({ workers: 'w1' }).get({ a: [inc, 1], b: [inc, 'a'] }, 'b', { priority: 5, retries: 2, resources: { GPU: 1 } });
      const msg = graphs(fake)[0]!;
      expect(msg.userPriority).toBe(5);
      for (const t of msg.tasks) {
        expect(t.workers).toEqual(['w1']);
        expect(t.retries).toBe(2);
        expect(t.resources).toEqual({ GPU: 1 });
      }
    });
  });

  describe('rejected before anything is sent, naming the key', () => {
    async function rejects(graph: unknown, keys: unknown, pattern: RegExp, key?: string, cls: Function = InvalidGraphError): Promise<void> {
      await withFake(async (client, fake) => {
        let err: unknown;
        try {
          await client.get(graph as never, keys as never);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(cls);
        expect((err as Error).message).toMatch(pattern);
        if (key !== undefined) expect((err as InvalidGraphError).key).toBe(key);
        expect(fake.sent).toHaveLength(0);
        expect(client.refcounts().size).toBe(0);
      });
    }

    test('missing keys', async () => {
      await rejects({ a: [inc, 1] }, 'b', /key b is not in the graph/, 'b');
      await rejects({ a: [inc, 1] }, ['a', ['b']], /key b is not in the graph/, 'b');
      await rejects(new Map([[['x', 0], [inc, 1]]]), ['x', 1], /key \["x",1\] is not in the graph/, '["x",1]');
      await rejects({ a: [inc, 1] }, 3, /keys must be a key or a list of keys/);
    });

    test('cycles, also through nested tasks and self references', async () => {
      await rejects({ a: [inc, 'c'], b: [inc, 'a'], c: [inc, 'b'], d: [inc, 1] }, 'd', /cycle: ([abc]) -> [abc] -> [abc] -> \1/, undefined, GraphCycleError);
      await rejects({ a: [inc, 'a'] }, 'a', /cycle: a -> a/, 'a', GraphCycleError);
      await rejects({ a: [sum, [[inc, 'b']]], b: [inc, 'a'] }, 'b', /cycle/, undefined, GraphCycleError);
    });

    test('malformed tasks and graphs', async () => {
      await rejects({ a: inc }, 'a', /graph key a is a function, not a task/, 'a');
      await rejects({ a: [add, 1, inc] }, 'a', /graph key a: a function stands in an argument \(1\)/, 'a');
      await rejects({ a: [inc.bind(null), 1] }, 'a', /graph key a: cannot send a bound function/, 'a');
      await rejects({ a: [inc, Symbol('s')] }, 'a', /graph key a: cannot encode the task/, 'a');
      await rejects([[inc, 1]], 'a', /a graph is a plain object or a Map/);
      await rejects(new Map([[7, [inc, 1]]]), 'a', /graph keys must be strings or arrays/);
      await rejects(new Map<unknown, unknown>([[['x', 0], 1], ['["x",0]', 2]]), '["x",0]', /graph key \["x",0\] appears twice/, '["x",0]');
    });
  });
});
