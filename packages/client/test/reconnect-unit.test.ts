// The client's reconnection, against the fake scheduler: futures of the lost connection become
// lost at once, submissions queue while it retries (with backoff), rpc calls wait, and after the
// new connection everything goes out; giving up closes the client.

import { Client } from '../src/index';
import type { LinkFactory } from '../src/internal';
import { FakeScheduler } from './fake-scheduler';
import { inc } from './task-functions';

jest.setTimeout(20_000);

function flaky(fake: FakeScheduler, failures: number): { link: LinkFactory; attempts: number[] } {
  const out = { attempts: [] as number[], link: (async () => undefined) as unknown as LinkFactory };
  let left = failures;
  let first = true;
  out.link = async (address, handlers, options) => {
    if (!first) {
      out.attempts.push(Date.now());
      if (left-- > 0) throw new Error('ECONNREFUSED (fake)');
    }
    first = false;
    return fake.link(address, handlers, options);
  };
  return out;
}

describe('client reconnection (fake scheduler)', () => {
  test('lost futures, queued submissions, backoff, then work resumes', async () => {
    const fake = new FakeScheduler();
    const f = flaky(fake, 2);
    const client = await Client.connect('fake://s', { link: f.link, heartbeatIntervalMs: 0, reconnectTimeout: 5_000 });
    try {
      fake.auto = false;
      const pending = client.submit(inc, 1);
      await new Promise((r) => setImmediate(r));
      fake.handlers!.onClose(new Error('socket hang up'));
      expect(pending.status).toBe('lost');
      await expect(pending.result()).rejects.toThrow(/lost the connection to the scheduler \(socket hang up\); its computations are gone/);
      expect(client.connected).toBe(false);
      fake.auto = true;
      const sentBefore = fake.sent.length;
      const queued = client.submit(inc, 10);
      const info = client.schedulerInfo().catch((e: Error) => e);
      await new Promise((r) => setImmediate(r));
      expect(fake.sent.length).toBe(sentBefore);
      expect(await queued).toBe(11);
      expect(client.connected).toBe(true);
      expect(f.attempts).toHaveLength(3);
      // Backoff: 100 ms, then 200 ms.
      expect(f.attempts[2]! - f.attempts[0]!).toBeGreaterThanOrEqual(250);
      expect(await info).not.toBeInstanceOf(Error);
      // The same key again computes again.
      expect(await client.submit(inc, 1)).toBe(2);
    } finally {
      await client.close();
    }
  });

  test('rpcs made while reconnecting (scatter, cancel, gather, identity) wait for the new connection', async () => {
    const fake = new FakeScheduler();
    const f = flaky(fake, 2);
    const client = await Client.connect('fake://s', { link: f.link, heartbeatIntervalMs: 0, reconnectTimeout: 5_000 });
    try {
      const held = client.scatter(41);
      expect(await held).toBe(41);
      fake.drop(new Error('socket hang up'));
      expect(client.connected).toBe(false);
      // Each of these used the lost connection at once and failed with CommClosedError.
      const scattered = client.scatter(7);
      const info = client.schedulerInfo();
      const cancelled = client.cancel(client.submit(inc, 5));
      expect(await scattered).toBe(7);
      expect(await client.gather(scattered)).toBe(7);
      await expect(info).resolves.toBeDefined();
      await expect(cancelled).resolves.toBeUndefined();
      expect(client.connected).toBe(true);
      expect(f.attempts).toHaveLength(3);
    } finally {
      await client.close();
    }
  });

  test('reconnectTimeout 0: the client closes at once, as before', async () => {
    const fake = new FakeScheduler();
    const client = await Client.connect('fake://s', { link: fake.link, heartbeatIntervalMs: 0, reconnectTimeout: 0 });
    fake.handlers!.onClose(new Error('gone'));
    expect(client.status).toBe('closed');
    expect(() => client.submit(inc, 1)).toThrow(/client lost its scheduler: gone/);
    await client.close();
  });

  test('close() while reconnecting stops the retries', async () => {
    const fake = new FakeScheduler();
    const f = flaky(fake, 1_000);
    const client = await Client.connect('fake://s', { link: f.link, heartbeatIntervalMs: 0, reconnectTimeout: 10_000 });
    fake.handlers!.onClose(undefined);
    const queued = client.submit(inc, 1);
    await new Promise((r) => setTimeout(r, 250));
    await client.close();
    expect(queued.status).toBe('cancelled');
    const n = f.attempts.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(f.attempts.length).toBeLessThanOrEqual(n + 1);
  });
});
