/// <reference path="../../../packages/dashboard/test/prometheus-parser.d.ts" />
// dd-worker serves each worker's /health and /metrics on a free port by default, prints
// `Worker dashboard at: http://.../status`, and reports the port to the scheduler;
// --no-dashboard turns it off.
import parsePrometheus from 'parse-prometheus-text-format';
import { compileWorkerCli } from '../src/options';
import { binaries, killAll, startProcess, waitUntil, schedulerIdentity, startScheduler } from '../../../tools/testing/processes';

jest.setTimeout(60_000);

const base = { nworkers: '1', memoryLimit: '1GB', nanny: true, nannyPort: '0', workerPort: '0', dashboard: true, dashboardAddress: ':0' };

test('compileWorkerCli: dashboard on a free port by default, each next port for a fixed one, off with --no-dashboard', () => {
  expect(compileWorkerCli('tcp://127.0.0.1:8786', base).workers[0]?.dashboardAddress).toBe(':0');
  const fixed = compileWorkerCli('tcp://127.0.0.1:8786', { ...base, nworkers: '3', dashboardAddress: '127.0.0.1:9100' });
  expect(fixed.workers.map((w) => w.dashboardAddress)).toEqual(['127.0.0.1:9100', '127.0.0.1:9101', '127.0.0.1:9102']);
  expect(compileWorkerCli('tcp://127.0.0.1:8786', { ...base, dashboard: false }).workers[0]).not.toHaveProperty('dashboardAddress');
});

describe('dd-worker dashboard', () => {
  afterEach(() => killAll());

  test('each supervised worker prints its dashboard, serves /health and /metrics, and the scheduler knows the port', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--memory-limit', '1GB']);
    const lines = await w.waitForLines(/^Worker dashboard at: /, 2);
    const urls = lines.map((l) => l.replace('Worker dashboard at: ', ''));
    for (const url of urls) expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/status$/);
    expect(new Set(urls).size).toBe(2);
    for (const url of urls) {
      const root = url.replace(/\/status$/, '');
      const health = await fetch(`${root}/health`, { signal: AbortSignal.timeout(5000) });
      expect(health.status).toBe(200);
      expect(await health.text()).toBe('ok');
      const metrics = await fetch(`${root}/metrics`, { signal: AbortSignal.timeout(5000) });
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      const families = parsePrometheus(await metrics.text());
      expect(families.find((f) => f.name === 'dd_worker_memory_limit_bytes')?.metrics[0]?.value).toBe('1000000000');
      expect(families.some((f) => f.name === 'dd_worker_tasks')).toBe(true);
      expect((await fetch(url, { signal: AbortSignal.timeout(5000) })).status).toBe(200);
    }
    await waitUntil(async () => Object.keys((await schedulerIdentity(scheduler)).workers).length === 2, 10_000, 'two workers');
    const ports = Object.values((await schedulerIdentity(scheduler)).workers).map((x) => x.services?.['dashboard']);
    expect(ports.sort()).toEqual(urls.map((u) => Number(/:(\d+)\/status$/.exec(u)![1])).sort());
  });

  test('--no-dashboard (and --no-nanny) serves nothing', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--no-nanny', '--no-dashboard', '--nthreads', '1']);
    await w.waitForLine(/^Worker at: /);
    await waitUntil(async () => Object.keys((await schedulerIdentity(scheduler)).workers).length === 1, 10_000, 'worker registered');
    expect(Object.values((await schedulerIdentity(scheduler)).workers)[0]?.services).toBeUndefined();
    expect(w.lines.some((l) => l.startsWith('Worker dashboard at:'))).toBe(false);
  });

  test('--no-nanny prints the dashboard too', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--no-nanny', '--nthreads', '1']);
    const url = (await w.waitForLine(/^Worker dashboard at: /)).replace('Worker dashboard at: ', '');
    expect((await fetch(url.replace(/\/status$/, '/health'), { signal: AbortSignal.timeout(5000) })).status).toBe(200);
  });
});
