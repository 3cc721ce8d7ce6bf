// In-process cluster for dashboard tests: a Scheduler, workers (worker_threads executors) and a
// client over loopback tcp, plus a DashboardServer on a free port. Everything is closed by close().

import { Client } from '@dd/client';
import { Scheduler } from '@dd/scheduler';
import { Worker } from '@dd/worker';
import { DashboardServer, type DashboardOptions } from '../src/index';

export interface TestCluster {
  scheduler: Scheduler;
  workers: Worker[];
  client: Client;
  dashboard: DashboardServer;
  url: string;
  close(): Promise<void>;
}

export async function startCluster(opts: { nWorkers?: number; nthreads?: number; dashboard?: DashboardOptions } = {}): Promise<TestCluster> {
  const scheduler = await Scheduler.start({ address: 'tcp://127.0.0.1:0', heartbeatIntervalMs: 200 });
  const workers: Worker[] = [];
  let client: Client | undefined;
  let dashboard: DashboardServer | undefined;
  const close = async () => {
    await dashboard?.close();
    await client?.close().catch(() => undefined);
    await Promise.all(workers.map((w) => w.close().catch(() => undefined)));
    await scheduler.close();
  };
  try {
    dashboard = await DashboardServer.start(scheduler, { port: 0, updateIntervalMs: 200, ...opts.dashboard });
    for (let i = 0; i < (opts.nWorkers ?? 2); i++) {
      workers.push(
        await Worker.start({ scheduler: scheduler.address, nthreads: opts.nthreads ?? 2, name: `dash-worker-${i}`, memoryLimit: 2 ** 30, heartbeatIntervalMs: 200 }),
      );
    }
    client = await Client.connect(scheduler.address);
    return { scheduler, workers, client, dashboard, url: dashboard.url, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A task that takes `ms` (self-contained: it travels by source). */
export async function slowInc(x: number, ms = 40): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return x + 1;
}
