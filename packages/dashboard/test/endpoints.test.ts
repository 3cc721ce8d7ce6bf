import { connect } from 'node:net';
import parsePrometheus from 'parse-prometheus-text-format';
import WebSocket from 'ws';
import { DashboardServer, type EventStreamMessage } from '../src/index';
import { slowInc, startCluster, until, type TestCluster } from './cluster';

jest.setTimeout(30_000);

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; type: string; text: string; headers: Headers }> {
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5000), ...init });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text(), headers: res.headers };
}

function metric(families: ReturnType<typeof parsePrometheus>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const s = f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
}

describe('dashboard HTTP endpoints', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
    const futures = c.client.map(slowInc, Array.from({ length: 20 }, (_, i) => i));
    await c.client.gather(futures);
    // Keep the futures alive (in memory) for the counts below.
    (globalThis as { keep?: unknown }).keep = futures;
    await until(() => [...c.scheduler.state.workers.values()].every((w) => w.metrics !== null), 10_000, 'worker heartbeats');
  });
  afterAll(async () => {
    delete (globalThis as { keep?: unknown }).keep;
    await c?.close();
  });

  test('/health', async () => {
    const r = await get(`${c.url}/health`);
    expect(r).toMatchObject({ status: 200, text: 'ok' });
    expect(r.type).toMatch(/^text\/plain/);
  });

  test('/json/identity.json lists the scheduler and its workers', async () => {
    const r = await get(`${c.url}/json/identity.json`);
    expect(r.status).toBe(200);
    expect(r.type).toBe('application/json');
    const body = JSON.parse(r.text) as { type: string; id: string; address: string; workers: Record<string, { nthreads: number; name: string }> };
    expect(body).toMatchObject({ type: 'Scheduler', id: c.scheduler.id, address: c.scheduler.address });
    expect(Object.keys(body.workers).sort()).toEqual(c.workers.map((w) => w.address).sort());
    expect(Object.values(body.workers).map((w) => w.nthreads)).toEqual([2, 2]);
  });

  test('/json/counts.json counts tasks by state, workers and clients', async () => {
    const r = await get(`${c.url}/json/counts.json`);
    expect(r.type).toBe('application/json');
    const body = JSON.parse(r.text) as Record<string, number>;
    expect(body).toMatchObject({ workers: 2, threads: 4, memory: 20, processing: 0, erred: 0 });
    expect(body['tasks']).toBe(20);
    expect(body['clients']).toBeGreaterThanOrEqual(1);
  });

  test('/sitemap.json and /json/index.html', async () => {
    const r = await get(`${c.url}/sitemap.json`);
    expect(r.type).toBe('application/json');
    const { paths } = JSON.parse(r.text) as { paths: string[] };
    for (const p of ['/status', '/workers', '/health', '/metrics', '/json/counts.json', '/json/identity.json', '/eventstream']) expect(paths).toContain(p);
    const idx = await get(`${c.url}/json/index.html`);
    expect(idx.status).toBe(200);
    expect(idx.type).toMatch(/^text\/html/);
    expect(idx.text).toContain('counts.json');
  });

  test('/metrics is valid Prometheus text with tasks, workers, memory, transfers, rate and lag', async () => {
    const r = await get(`${c.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(r.text);
    const names = new Set(families.map((f) => f.name));
    expect(metric(families, 'dd_scheduler_tasks', { state: 'memory' })).toBe(20);
    expect(metric(families, 'dd_scheduler_tasks', { state: 'processing' })).toBe(0);
    expect(metric(families, 'dd_scheduler_workers')).toBe(2);
    expect(metric(families, 'dd_scheduler_threads')).toBe(4);
    expect(metric(families, 'dd_scheduler_tasks_finished_total')).toBe(20);
    expect(families.find((f) => f.name === 'dd_scheduler_tasks_finished_total')?.type).toBe('COUNTER');
    expect(metric(families, 'dd_scheduler_prefix_tasks', { prefix: 'slowInc', state: 'memory' })).toBe(20);
    expect(metric(families, 'dd_scheduler_cluster_memory_bytes', { kind: 'process' })).toBeGreaterThan(0);
    expect(metric(families, 'dd_scheduler_cluster_memory_limit_bytes')).toBe(2 * 2 ** 30);
    expect(metric(families, 'dd_worker_memory_bytes', { worker: c.workers[0]!.address })).toBeGreaterThan(0);
    expect(metric(families, 'dd_scheduler_transitions_total')).toBeGreaterThan(40);
    for (const n of ['dd_scheduler_transfer_bytes_total', 'dd_scheduler_tasks_stolen_total', 'dd_scheduler_tasks_per_second', 'dd_scheduler_event_loop_lag_seconds', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      expect(names).toContain(n);
    }
    expect(metric(families, 'dd_scheduler_event_loop_lag_seconds', { stat: 'max' })).toBeGreaterThanOrEqual(0);
    // Counters never go down between scrapes.
    const again = parsePrometheus((await get(`${c.url}/metrics`)).text);
    expect(metric(again, 'dd_scheduler_tasks_finished_total')).toBe(20);
  });

  test('live pages are HTML shells that load the bundled app; the bundle is served', async () => {
    for (const p of ['/status', '/workers', '/tasks', '/graph']) {
      const r = await get(`${c.url}${p}`);
      expect(r.status).toBe(200);
      expect(r.type).toMatch(/^text\/html/);
      expect(r.text).toContain('/statics/dashboard.js');
    }
    const js = await get(`${c.url}/statics/dashboard.js`);
    expect(js.status).toBe(200);
    expect(js.type).toMatch(/^text\/javascript/);
    const css = await get(`${c.url}/statics/dashboard.css`);
    expect(css.type).toMatch(/^text\/css/);
    expect((await get(`${c.url}/statics/nope.js`)).status).toBe(404);
    expect((await get(`${c.url}/statics/..%2fpackage.json`)).status).toBe(404);
  });

  test('/info pages: workers, a worker, a task with its story', async () => {
    expect((await get(`${c.url}/`)).headers.get('location')).toBe('/status');
    expect((await get(`${c.url}/info`)).headers.get('location')).toBe('/info/main/workers.html');
    const ws = await get(`${c.url}/info/main/workers.html`);
    expect(ws.type).toMatch(/^text\/html/);
    expect(ws.text).toContain('dash-worker-0');
    const addr = c.workers[0]!.address;
    const w = await get(`${c.url}/info/worker/${encodeURIComponent(addr)}.html`);
    expect(w.status).toBe(200);
    expect(w.text).toContain('In memory');
    const key = [...c.scheduler.state.tasks.keys()][0]!;
    const t = await get(`${c.url}/info/task/${encodeURIComponent(key)}.html`);
    expect(t.status).toBe(200);
    expect(t.text).toContain('processing');
    expect(t.text).toContain('memory');
    expect((await get(`${c.url}/info/task/nope.html`)).status).toBe(404);
    expect((await get(`${c.url}/info/worker/nope.html`)).status).toBe(404);
    expect((await get(`${c.url}/info/main/logs.html`)).status).toBe(200);
    const graph = JSON.parse((await get(`${c.url}/json/graph.json`)).text) as { nodes: unknown[]; total: number };
    expect(graph.nodes).toHaveLength(20);
  });

  test('read-only: other methods are refused; unknown paths are 404', async () => {
    const r = await get(`${c.url}/metrics`, { method: 'POST', body: 'x' });
    expect(r.status).toBe(405);
    expect((await get(`${c.url}/nope`)).status).toBe(404);
    const head = await fetch(`${c.url}/health`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
    expect(head.status).toBe(200);
  });

  test('a WebSocket upgrade anywhere but /eventstream gets a 404 saying where the live updates are', async () => {
    for (const path of ['/status', '/nope']) {
      const ws = new WebSocket(`${c.url.replace('http', 'ws')}${path}`);
      const answer = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        ws.once('open', () => reject(new Error(`${path} was upgraded`)));
        ws.once('error', reject);
      });
      ws.terminate();
      expect(answer).toEqual({ status: 404, body: `no WebSocket at ${path}; the live updates are at /eventstream\n` });
    }
    expect((await get(`${c.url}/status`)).status).toBe(200);
  });

  test('a refused upgrade does not keep the server open: close() finishes while the peer keeps its side open', async () => {
    const dashboard = await DashboardServer.start(c.scheduler, { port: 0 });
    const sock = connect({ port: dashboard.port, host: '127.0.0.1', allowHalfOpen: true });
    try {
      let answer = '';
      sock.on('data', (b: Buffer) => (answer += b.toString('latin1')));
      const ended = new Promise<void>((resolve) => sock.once('end', () => resolve()));
      await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
      sock.write('GET /nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      await ended;
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
      const closing = dashboard.close().then(() => 'closed');
      expect(await Promise.race([closing, new Promise((resolve) => setTimeout(() => resolve('still open after 3 s'), 3000))])).toBe('closed');
    } finally {
      sock.destroy();
      await dashboard.close();
    }
  });

  test('/eventstream pushes snapshots and new task-stream records', async () => {
    const ws = new WebSocket(`${c.url.replace('http', 'ws')}/eventstream?history=100000`);
    const msgs: EventStreamMessage[] = [];
    ws.on('message', (d) => msgs.push(JSON.parse(String(d)) as EventStreamMessage));
    try {
      await until(() => msgs.length >= 1, 5000, 'first update');
      const first = msgs[0]!;
      expect(first.type).toBe('update');
      expect(first.workers).toHaveLength(2);
      expect(first.counts.states['memory']).toBe(20);
      expect(first.prefixes).toEqual([expect.objectContaining({ name: 'slowInc', memory: 20, alive: 20 })]);
      const computes = first.stream.filter((r) => r.action === 'compute');
      expect(computes).toHaveLength(20);
      for (const r of computes) {
        expect(r.stop).toBeGreaterThanOrEqual(r.start);
        expect(r.lane).toBeLessThan(2);
        expect(r.prefix).toBe('slowInc');
      }
      // New work shows up as new records in later updates only.
      const more = c.client.map(slowInc, [100, 101, 102]);
      await c.client.gather(more);
      // The three records may arrive spread over several pushes (one tick can fall between two
      // task-finished messages), so wait for all of them rather than for the first push.
      const laterComputes = () =>
        msgs.slice(1).flatMap((m) => m.stream).filter((r) => r.action === 'compute');
      await until(() => laterComputes().length >= 3, 5000, 'new records');
      const keys = new Set(more.map((f) => f.key));
      expect(laterComputes()).toHaveLength(3);
      expect(laterComputes().every((r) => keys.has(r.key))).toBe(true);
      for (const f of more) f.release();
    } finally {
      ws.terminate();
    }
  });
});
