// Resilience with the real binaries: a dd-scheduler, dd-worker under its nanny, a client in this
// process. Workers are killed (-9), made to kill themselves, and stopped (SIGSTOP); the
// computations still finish with correct results. Bounds are generous (a loaded 2-core
// machine); nothing is timed beyond them. Every process is killed (and SIGCONT'd) in cleanup.

import { Client } from '@dd/client';
import { binaries, childPids, isAlive, killAll, startProcess, waitUntil, type RunningProcess, startSchedulerProcess, workerAddresses } from '../../../tools/testing/processes';

jest.setTimeout(240_000);

async function startWorkers(scheduler: string, n: number): Promise<RunningProcess> {
  const w = startProcess(binaries.worker, [scheduler, '--nworkers', String(n), '--nthreads', '1', '--no-dashboard']);
  await w.waitForLines(/^Worker at: /, n, 60_000);
  await waitUntil(async () => (await workerAddresses(scheduler)).length === n, 60_000, `${n} workers registered`);
  return w;
}

const stopped = new Set<number>();
let client: Client | undefined;
afterEach(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
  stopped.clear();
  await client?.close().catch(() => undefined);
  client = undefined;
  await killAll(5_000);
});

// Task functions travel by source: self-contained.
const inc = (x: number) => x + 1;
const add = (a: number, b: number) => a + b;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** 10 000 tasks in 5 layers of 2 000 (each task of a layer needs two of the previous) and a sum. */
function layeredGraph(run: string, width = 2000, layers = 5): { graph: Map<string | (string | number)[], unknown>; expected: number } {
  const graph = new Map<string | (string | number)[], unknown>();
  let values = Array.from({ length: width }, (_, i) => i + 1);
  for (let i = 0; i < width; i++) graph.set([run, 0, i], [inc, i]);
  for (let l = 1; l < layers; l++) {
    for (let i = 0; i < width; i++) graph.set([run, l, i], [add, [run, l - 1, i], [run, l - 1, (i + 1) % width]]);
    values = values.map((v, i) => v + values[(i + 1) % width]!);
  }
  graph.set(`${run}-total`, [sum, Array.from({ length: width }, (_, i) => [run, layers - 1, i])]);
  return { graph, expected: values.reduce((a, b) => a + b, 0) };
}

test('a 10 000-task graph on 3 workers finishes with the right result while workers are killed -9 and restarted by the nanny', async () => {
  // Random kills may hit one task on several workers; this test is about recovery, not blame.
  const { address: scheduler } = await startSchedulerProcess('--allowed-failures', '20');
  const w = await startWorkers(scheduler, 3);
  client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
  const run = `g${Date.now()}`;
  const { graph, expected } = layeredGraph(run);
  expect(graph.size).toBe(10_001);

  let done = false;
  const kills: number[] = [];
  const killer = (async () => {
    // The graph runs for seconds (cross-worker dependencies at every layer): the first kill
    // lands at 0.5 s, then one a second.
    for (let k = 0; k < 4 && !done; k++) {
      await new Promise((r) => setTimeout(r, k === 0 ? 500 : 1_000));
      if (done) break;
      const pids = childPids(w.child.pid!);
      const victim = pids[Math.floor(Math.random() * pids.length)];
      if (victim === undefined) continue;
      process.kill(victim, 'SIGKILL');
      kills.push(victim);
      // Let the nanny bring it back before the next kill (so three workers keep going).
      await w.waitForLines(/died with signal SIGKILL; restarting/, kills.length, 60_000);
    }
  })();
  const t0 = Date.now();
  const result = await Promise.race([
    client.get(graph, `${run}-total`),
    new Promise((_, reject) => setTimeout(() => reject(new Error('the graph did not finish within 180 s')), 180_000).unref()),
  ]);
  done = true;
  await killer;
  expect(result).toBe(expected);
  expect(kills.length).toBeGreaterThanOrEqual(2);
  for (const pid of kills) expect(isAlive(pid)).toBe(false);
  // The nanny restarted each; three workers again.
  await waitUntil(async () => (await workerAddresses(scheduler)).length === 3, 60_000, 'three workers again');
  console.log(`10 001 tasks with ${kills.length} kills: ${Date.now() - t0} ms`);
});

test('a task that kills its worker every time ends as KilledWorker after 3 deaths while other work completes', async () => {
  const { address: scheduler } = await startSchedulerProcess();
  // Three workers the bad task may run on, and one that does the other work: a task processing
  // on a worker when it dies is counted as suspicious too (the reference's unfair blame), so
  // other work sharing the victims could itself end as KilledWorker.
  const victims = startProcess(binaries.worker, [scheduler, '--nworkers', '3', '--nthreads', '1', '--name', 'victim', '--no-dashboard']);
  const steady = startProcess(binaries.worker, [scheduler, '--nthreads', '1', '--name', 'steady', '--no-dashboard']);
  await victims.waitForLines(/^Worker at: /, 3, 60_000);
  await steady.waitForLine(/^Worker at: /, 60_000);
  await waitUntil(async () => (await workerAddresses(scheduler)).length === 4, 60_000, '4 workers registered');
  client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
  const suicide = () => {
    process.kill(process.pid, 'SIGKILL');
    return 0;
  };
  const bad = client.options({ workers: ['victim-0', 'victim-1', 'victim-2'] }).submit(suicide);
  const badOutcome = bad.then(() => undefined, (err: unknown) => err);
  let settled = false;
  void badOutcome.then(() => (settled = true));
  // Other work, batch after batch, while the bad task kills workers.
  const onSteady = client.options({ pure: false, workers: ['steady'] });
  let batch = 0;
  while (!settled && batch < 2000) {
    const xs = onSteady.map(inc, Array.from({ length: 50 }, (_, i) => i + batch * 50));
    expect(await client.gather(xs)).toEqual(Array.from({ length: 50 }, (_, i) => i + batch * 50 + 1));
    batch++;
  }
  const err = (await badOutcome) as Error & { remoteName?: string; remoteCode?: string };
  expect(err).toBeInstanceOf(Error);
  expect(err.remoteName).toBe('KilledWorker');
  expect(err.remoteCode).toBe('DD_ERR_KILLED_WORKER');
  expect(err.message).toMatch(/Attempted to run task suicide-\S+ on 3 different workers, but all those workers died/);
  // The scheduler can see the third death (its socket closing) before the nanny logs it.
  await victims.waitForLines(/died with signal SIGKILL/, 3, 20_000);
  expect(batch).toBeGreaterThan(0);
  // Not retried after that, and the cluster still works.
  await waitUntil(async () => (await workerAddresses(scheduler)).length === 4, 60_000, 'four workers again');
  expect(await client.gather(client.options({ pure: false }).map(inc, [1, 2, 3]))).toEqual([2, 3, 4]);
  expect(victims.lines.filter((l) => /died with signal SIGKILL/.test(l))).toHaveLength(3);
});

test('a worker cut off without closing its socket (SIGSTOP) is removed after the worker TTL and its work completes elsewhere', async () => {
  const { address: scheduler, process: sp } = await startSchedulerProcess('--worker-ttl', '3s');
  const w = await startWorkers(scheduler, 2);
  client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
  const slow = (x: number) => {
    const until = Date.now() + 100;
    while (Date.now() < until);
    return x * 2;
  };
  const n = 60;
  const xs = client.options({ pure: false }).map(slow, Array.from({ length: n }, (_, i) => i));
  // Both workers are busy; stop one of them.
  await new Promise((r) => setTimeout(r, 500));
  const [victim] = childPids(w.child.pid!);
  process.kill(victim!, 'SIGSTOP');
  stopped.add(victim!);
  const results = await Promise.race([
    client.gather(xs),
    new Promise((_, reject) => setTimeout(() => reject(new Error('work did not complete within 120 s')), 120_000).unref()),
  ]);
  expect(results).toEqual(Array.from({ length: n }, (_, i) => i * 2));
  await sp.waitForLine(/missed heartbeats for \d+ ms; removing it/, 30_000);
  expect((await workerAddresses(scheduler)).length).toBe(1);
  expect(isAlive(victim!)).toBe(true); // stopped, not dead: the nanny has nothing to restart
});

test('a transfer from a peer that froze mid-run (SIGSTOP) is abandoned once the scheduler removes it; the data is recomputed and the work completes', async () => {
  const { address: scheduler, process: sp } = await startSchedulerProcess('--worker-ttl', '3s');
  const w = await startWorkers(scheduler, 2);
  client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
  const pids = (await client.run(() => process.pid)) as Record<string, number>;
  const [holder, fetcher] = Object.keys(pids).sort();
  const make = (seed: number) => Buffer.alloc(1 << 20, seed);
  const sum = (b: Uint8Array) => b.reduce((s, x) => s + x, 0);
  const onHolder = client.options({ pure: false, workers: [holder!], allowOtherWorkers: true });
  const onFetcher = client.options({ pure: false, workers: [fetcher!] });
  // One transfer first, so the fetcher has a pooled connection to the holder.
  expect(await onFetcher.submit(sum, onHolder.submit(make, 1))).toBe(1 << 20);
  const x = onHolder.submit(make, 2);
  await x.result();
  expect(await client.whoHas([x])).toEqual({ [x.key]: [holder] });
  process.kill(pids[holder!]!, 'SIGSTOP');
  stopped.add(pids[holder!]!);
  // The fetcher asks the frozen holder for x on that connection: no reply will ever come.
  const y = onFetcher.submit(sum, x);
  const result = await Promise.race([
    y.result(),
    new Promise((_, reject) => setTimeout(() => reject(new Error('the task waiting on the frozen peer did not complete within 60 s')), 60_000).unref()),
  ]);
  expect(result).toBe(2 << 20);
  await sp.waitForLine(/missed heartbeats for \d+ ms; removing it/, 30_000);
  expect(await client.whoHas([x])).toEqual({ [x.key]: [fetcher] }); // recomputed there
  expect(isAlive(pids[holder!]!)).toBe(true);
  void w;
});
