// Inside a task: getWorker() (address, name, logEvent into the scheduler's event log) with both
// executors; NoWorkerError outside a task; the unsupported helpers throw NotSupportedError.
// Tasks load @dd/client from dist/ (built by `npm test`), as on a real worker.

import { NoWorkerError, NotSupportedError, RemoteError, getClient, getWorker, rejoin, secede, workerClient } from '../src/index';
import { until, withCluster } from './harness';

jest.setTimeout(60_000);

interface Seen {
  address: string;
  name: string;
  afterAwait: string;
  inTimer: string;
}

// The task: who am I (also after an await, and in a timer callback it started), and log events.
async function whoAmI(tag: string): Promise<Seen> {
  const { getWorker } = require('@dd/client');
  const w = getWorker();
  w.logEvent('task-events', { tag, address: w.address, name: w.name });
  w.logEvent(['multi-a', 'multi-b'], tag);
  await new Promise((r) => setTimeout(r, 5));
  const afterAwait: string = getWorker().name;
  const inTimer: string = await new Promise((resolve) => setTimeout(() => resolve(getWorker().name), 1));
  return { address: w.address, name: w.name, afterAwait, inTimer };
}

describe('getWorker() inside tasks', () => {
  test('thread pool and inline executors: the worker\'s address and name, and logEvent reaches getEvents', async () => {
    await withCluster({ workers: [{ name: 'w-threads', executor: 'threads' }, { name: 'w-inline', executor: 'inline' }] }, async ({ client, workers }) => {
      const byName = Object.fromEntries(workers.map((w) => [w.name, w.address]));
      for (const name of ['w-threads', 'w-inline']) {
        const seen = await client.options({ workers: [name] }).submit(whoAmI, name);
        expect(seen).toEqual({ address: byName[name], name, afterAwait: name, inTimer: name });
      }
      // Tasks on both workers at once, each sees its own worker.
      const both = await client.gather(['w-threads', 'w-inline'].map((n) => client.options({ workers: [n], pure: false }).submit(whoAmI, `again-${n}`)));
      expect(both.map((s) => s.name)).toEqual(['w-threads', 'w-inline']);

      await until(async () => (await client.getEvents('task-events')).length === 4, 10_000, 'the task events');
      const events = await client.getEvents('task-events');
      const msgs = events.map(([time, msg]) => {
        expect(typeof time).toBe('number');
        return msg;
      });
      expect(msgs).toEqual(expect.arrayContaining([
        { tag: 'w-threads', address: byName['w-threads'], name: 'w-threads' },
        { tag: 'w-inline', address: byName['w-inline'], name: 'w-inline' },
        { tag: 'again-w-threads', address: byName['w-threads'], name: 'w-threads' },
        { tag: 'again-w-inline', address: byName['w-inline'], name: 'w-inline' },
      ]));
      await until(async () => (await client.getEvents('multi-b')).length === 4, 10_000, 'the multi-topic events');
      expect((await client.getEvents('multi-a')).map(([, m]) => m).sort()).toEqual(['again-w-inline', 'again-w-threads', 'w-inline', 'w-threads']);

      // A bad topic fails the task with a TypeError, on either executor.
      for (const name of ['w-threads', 'w-inline']) {
        const bad = client.options({ workers: [name] }).submit((_n: string) => require('@dd/client').getWorker().logEvent([], 1), name);
        const err = await bad.result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RemoteError);
        expect((err as RemoteError).remoteName).toBe('TypeError');
        expect((err as RemoteError).message).toMatch(/topic must be a string/);
        // A message that cannot travel fails in the task (on the worker's stream it would take
        // the batch down with it); the worker goes on.
        const unsendable = client.options({ workers: [name] }).submit((_n: string) => require('@dd/client').getWorker().logEvent('t', { f: () => 1 }), name);
        const err2 = await unsendable.result().catch((e: unknown) => e);
        expect((err2 as RemoteError).remoteName).toBe('TypeError');
        expect((err2 as RemoteError).message).toMatch(/msg cannot be sent to the scheduler/);
        expect(await client.options({ workers: [name], pure: false }).submit(whoAmI, `after-${name}`)).toMatchObject({ name });
      }
      await until(async () => (await client.getEvents('task-events')).length === 6, 10_000, 'the events after the failures');
    });
  });

  test('outside a task: NoWorkerError, also on a worker outside task code (client.run)', async () => {
    expect(() => getWorker()).toThrow(NoWorkerError);
    expect(() => getWorker()).toThrow(/getWorker\(\) was called outside a task/);
    try {
      getWorker();
    } catch (err) {
      expect((err as Error).name).toBe('NoWorkerError');
      expect((err as NoWorkerError).code).toBe('DD_ERR_NO_WORKER');
    }
    await withCluster({ workers: [{ executor: 'inline' }] }, async ({ client }) => {
      const res = await client.run({ onError: 'return' }, () => require('@dd/client').getWorker());
      const err = Object.values(res)[0] as RemoteError;
      expect(err).toBeInstanceOf(RemoteError);
      expect(err.remoteName).toBe('NoWorkerError');
    });
  });

  test('getClient, workerClient, secede, rejoin are not supported yet: NotSupportedError, in a task too', async () => {
    for (const fn of [getClient, workerClient, secede, rejoin]) {
      expect(() => fn()).toThrow(NotSupportedError);
      expect(() => fn()).toThrow(new RegExp(`${fn.name}\\(\\) is not supported yet`));
    }
    await withCluster({ workers: [{ executor: 'threads' }] }, async ({ client }) => {
      const f = client.submit(() => require('@dd/client').secede());
      const err = await f.result().catch((e: unknown) => e);
      expect((err as RemoteError).remoteName).toBe('NotSupportedError');
    });
  });
});
