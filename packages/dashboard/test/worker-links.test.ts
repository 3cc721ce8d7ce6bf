// The scheduler dashboard links each worker that serves HTTP endpoints to its own /status page
// (the port comes from the worker's register-worker `services`).
import { Scheduler } from '@dd/scheduler';
import { Worker } from '@dd/worker';
import { DashboardServer } from '../src/index';
import type { EventStreamMessage } from '../src/index';
import WebSocket from 'ws';

jest.setTimeout(20_000);

test('workers with a dashboard get a link in /info, /json/identity.json and the /workers data', async () => {
  const scheduler = await Scheduler.start({ address: 'tcp://127.0.0.1:0', logger: { debug() {}, info() {}, warn() {}, error() {} } });
  const workers: Worker[] = [];
  let dashboard: DashboardServer | undefined;
  try {
    dashboard = await DashboardServer.start(scheduler, { port: 0 });
    const withPage = await Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', dashboardAddress: ':0', logger: { warn() {} } });
    workers.push(withPage);
    workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', logger: { warn() {} } }));
    const page = `${withPage.dashboardUrl!}/status`;

    const info = await (await fetch(`${dashboard.url}/info/main/workers.html`, { signal: AbortSignal.timeout(5000) })).text();
    expect(info).toContain(`<a href="${page}">status</a>`);
    expect(info.match(/>status<\/a>/g)).toHaveLength(1);
    const one = await (await fetch(`${dashboard.url}/info/worker/${encodeURIComponent(withPage.address)}.html`, { signal: AbortSignal.timeout(5000) })).text();
    expect(one).toContain(`<a href="${page}">${page}</a>`);

    const id = (await (await fetch(`${dashboard.url}/json/identity.json`, { signal: AbortSignal.timeout(5000) })).json()) as { workers: Record<string, { dashboard?: string }> };
    expect(id.workers[withPage.address]?.dashboard).toBe(page);
    expect(id.workers[workers[1]!.address]?.dashboard).toBeUndefined();

    // The live /workers page renders from the eventstream's worker snapshots.
    const ws = new WebSocket(`${dashboard.url.replace('http', 'ws')}/eventstream?stream=0`);
    try {
      const msg = await new Promise<EventStreamMessage>((resolve, reject) => {
        ws.once('message', (data) => resolve(JSON.parse(String(data)) as EventStreamMessage));
        ws.once('error', reject);
      });
      expect(msg.workers.find((w) => w.address === withPage.address)?.dashboard).toBe(page);
    } finally {
      ws.terminate();
    }
    // And the link works.
    expect((await fetch(page, { signal: AbortSignal.timeout(5000) })).status).toBe(200);
  } finally {
    await dashboard?.close();
    await Promise.all(workers.map((w) => w.close()));
    await scheduler.close();
  }
});
