// The memory promise with the real binaries: a worker (under its nanny) whose results together
// are several times its memory limit spills them to disk, stays under the terminate fraction
// (the nanny never restarts it), and every result is still correct.

import { Client } from '@dd/client';
import { readFileSync } from 'node:fs';
import { binaries, childPids, killAll, startProcess, startScheduler, waitUntil } from '../../../tools/testing/processes';

jest.setTimeout(180_000);

const MiB = 1024 * 1024;
const LIMIT = 400 * MiB;
const VALUE = 8 * MiB;
const COUNT = 150; // 1.2 GiB of results: 3 x the limit

/** A buffer whose every byte depends on `i`, so a mixed-up or corrupted value is caught. */
const make = (i: number, size: number): Buffer => {
  const b = Buffer.allocUnsafe(size);
  for (let j = 0; j < size; j += 4096) b[j] = (i * 31 + j / 4096) & 0xff;
  b[size - 1] = i & 0xff;
  return b;
};
const check = (b: Uint8Array, i: number, size: number): boolean => {
  if (b.length !== size || b[size - 1] !== (i & 0xff)) return false;
  for (let j = 0; j < size; j += 4096) if (b[j] !== ((i * 31 + j / 4096) & 0xff)) return false;
  return true;
};

describe('a worker under memory pressure', () => {
  let client: Client | undefined;
  afterEach(async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    await killAll();
  });

  test(`results of ${(COUNT * VALUE) / LIMIT}x the memory limit are spilled, never terminate the worker, and all read back correctly`, async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nthreads', '1', '--memory-limit', `${LIMIT}`, '--no-dashboard']);
    await w.waitForLine(/^Worker at: /, 30_000);
    client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
    await client.waitForWorkers(1, { timeout: 20_000 });

    const values = client.map(make, Array.from({ length: COUNT }, (_, i) => i), Array(COUNT).fill(VALUE) as number[]);
    const checks = client.map(check, values, Array.from({ length: COUNT }, (_, i) => i), Array(COUNT).fill(VALUE) as number[]);
    expect(await client.gather(checks)).toEqual(Array(COUNT).fill(true));

    // The scheduler learns the spilled bytes from heartbeats (one a second), so the figure it
    // holds may predate the last few results: wait for the heartbeat that reports them.
    const spilled = async (): Promise<number> => {
      const info = await client!.schedulerInfo();
      const [worker] = Object.values(info.workers) as Array<{ metrics?: { spilledBytes?: number } }>;
      return worker?.metrics?.spilledBytes ?? 0;
    };
    await waitUntil(async () => (await spilled()) > COUNT * VALUE - LIMIT, 10_000, 'a heartbeat reporting the spilled results');
    // The nanny never had to step in: no restart for memory, no worker death.
    expect(w.lines.filter((l) => /exceeded|died with|restarting/i.test(l))).toEqual([]);
    // Nor would it have, had it looked at every moment: the worker process's peak RSS.
    const [pid] = childPids(w.child.pid!);
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
    expect(peak).toBeLessThan(0.95 * LIMIT);
  });
});
