/// <reference path="../../dashboard/test/prometheus-parser.d.ts" />
// A worker's HTTP endpoints (/health, /metrics, /status, /sitemap.json), against the real
// scheduler: off by default, on with `dashboardAddress`, reported to the scheduler as a service.
import { connect, rpc, type Comm } from '@dd/comm';
import { encodeTaskSpec, keyRef, type FunctionRef, type SchedulerIdentity, type TaskDefinition } from '@dd/protocol';
import { Scheduler } from '@dd/scheduler';
import { Worker } from '@dd/worker';
import parsePrometheus from 'parse-prometheus-text-format';

jest.setTimeout(20_000);

const quiet = { warn: () => {} };
const BIG: FunctionRef = { kind: 'source', name: 'big', source: 'function big(n) { return new Uint8Array(n).fill(7); }', hash: 'big-1' };
const LEN: FunctionRef = { kind: 'source', name: 'len', source: 'function len(a, b) { return a.length + b.length; }', hash: 'len-1' };

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5000), ...init });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

type Families = ReturnType<typeof parsePrometheus>;
function metric(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const s = f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
}

async function readUntil(comm: Comm, pred: (m: Record<string, unknown>) => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('timed out');
    const msg = await Promise.race([comm.read(), new Promise((_, rej) => setTimeout(() => rej(new Error('timed out')), left).unref())]);
    for (const m of (Array.isArray(msg) ? msg : [msg]) as Record<string, unknown>[]) if (pred(m)) return;
  }
}

describe('worker HTTP endpoints', () => {
  let scheduler: Scheduler;
  const workers: Worker[] = [];
  let client: Comm | undefined;

  beforeAll(async () => {
    scheduler = await Scheduler.create({ logger: { debug() {}, info() {}, warn() {}, error() {} } });
    workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', dashboardAddress: ':0', logger: quiet }));
    workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', dashboardAddress: ':0', logger: quiet }));
    // A third worker without the option: no HTTP server.
    workers.push(await Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', logger: quiet }));
    const [w1, w2] = workers as [Worker, Worker];
    // One 64 KiB value on each of the first two workers and a task that needs both: one transfer.
    client = await connect(scheduler.address, { timeout: 5000 });
    await client.write({ op: 'register-client', client: 'c1', versions: {} });
    await client.read();
    const tasks: TaskDefinition[] = [
      { key: 'a', spec: encodeTaskSpec({ fn: BIG, args: [65536] }), dependencies: [], workers: [w1.address] },
      { key: 'b', spec: encodeTaskSpec({ fn: BIG, args: [65536] }), dependencies: [], workers: [w2.address] },
      { key: 'c', spec: encodeTaskSpec({ fn: LEN, args: [keyRef('a'), keyRef('b')] }), dependencies: ['a', 'b'], workers: [w1.address] },
    ];
    await client.write([{ op: 'update-graph', client: 'c1', tasks, keys: ['a', 'b', 'c'], stimulusId: 'ug-1' }]);
    await readUntil(client, (m) => m['op'] === 'key-in-memory' && m['key'] === 'c');
  });

  afterAll(async () => {
    await client?.close();
    await Promise.all(workers.map((w) => w.close()));
    await scheduler?.close();
  });

  test('off by default; on with dashboardAddress, on the worker\'s host', () => {
    const [w1, w2, w3] = workers as [Worker, Worker, Worker];
    expect(w3.dashboardUrl).toBeUndefined();
    expect(w3.http).toBeUndefined();
    for (const w of [w1, w2]) expect(w.dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(w1.dashboardUrl).not.toBe(w2.dashboardUrl);
  });

  test('the scheduler learns the port from register-worker (identity services)', async () => {
    const r = rpc(scheduler.address);
    try {
      const id = await r.call<SchedulerIdentity>('identity');
      const [w1, , w3] = workers as [Worker, Worker, Worker];
      expect(id.workers[w1.address]?.services).toEqual({ dashboard: w1.http!.port });
      expect(id.workers[w3.address]?.services).toBeUndefined();
    } finally {
      await r.close();
    }
    expect(scheduler.state.workers.get(workers[0]!.address)?.services).toEqual({ dashboard: workers[0]!.http!.port });
    expect(workers[0]!.identity().services).toEqual({ dashboard: workers[0]!.http!.port });
  });

  test('/health, /sitemap.json, /status, 404, 405, HEAD', async () => {
    const base = workers[0]!.dashboardUrl!;
    const h = await get(`${base}/health`);
    expect(h).toMatchObject({ status: 200, text: 'ok' });
    expect(h.type).toMatch(/^text\/plain/);
    const s = await get(`${base}/sitemap.json`);
    expect(s.type).toBe('application/json');
    expect(JSON.parse(s.text)).toEqual({ paths: ['/status', '/health', '/metrics', '/sitemap.json'] });
    const st = await get(`${base}/status`);
    expect(st.status).toBe(200);
    expect(st.type).toMatch(/^text\/html/);
    expect(st.text).toContain(`Worker ${workers[0]!.address}`);
    expect(st.text).toMatch(/<th>memory<\/th><td>\d+/);
    expect(st.text).not.toMatch(/https?:\/\/(?!127)/); // no external resources
    expect((await get(`${base}/`)).status).toBe(302);
    expect((await get(`${base}/nope`)).status).toBe(404);
    expect((await get(`${base}/health`, { method: 'POST' })).status).toBe(405);
    const head = await get(`${base}/metrics`, { method: 'HEAD' });
    expect(head).toMatchObject({ status: 200, text: '' });
  });

  test('/metrics is valid Prometheus text with tasks, memory, transfers and event-loop lag', async () => {
    const [w1, w2] = workers as [Worker, Worker];
    const r1 = await get(`${w1.dashboardUrl!}/metrics`);
    expect(r1.status).toBe(200);
    expect(r1.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m1 = parsePrometheus(r1.text);
    // w1 holds a and c, and fetched b from w2.
    expect(metric(m1, 'dd_worker_tasks', { state: 'memory' })).toBe(3);
    expect(metric(m1, 'dd_worker_tasks', { state: 'executing' })).toBe(0);
    expect(metric(m1, 'dd_worker_executing')).toBe(0);
    expect(metric(m1, 'dd_worker_threads')).toBe(1);
    expect(metric(m1, 'dd_worker_keys_in_memory')).toBe(3);
    expect(metric(m1, 'dd_worker_managed_bytes')).toBeGreaterThanOrEqual(2 * 65536);
    expect(metric(m1, 'dd_worker_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
    expect(metric(m1, 'dd_worker_memory_limit_bytes')).toBe(w1.options.memoryLimit);
    expect(metric(m1, 'dd_worker_bytes_in_flight')).toBe(0);
    expect(metric(m1, 'dd_worker_transfers', { direction: 'incoming' })).toBe(0);
    expect(metric(m1, 'dd_worker_transfer_incoming_total')).toBe(1);
    expect(metric(m1, 'dd_worker_transfer_incoming_bytes_total')).toBeGreaterThanOrEqual(65536);
    expect(metric(m1, 'dd_worker_transfer_outgoing_total')).toBe(0);
    for (const stat of ['mean', 'max', 'p99']) expect(metric(m1, 'dd_worker_event_loop_lag_seconds', { stat })).toBeGreaterThanOrEqual(0);
    expect(m1.find((f) => f.name === 'dd_worker_transfer_incoming_bytes_total')?.type).toBe('COUNTER');
    expect(m1.some((f) => f.name === 'process_resident_memory_bytes' || f.name === 'nodejs_heap_size_used_bytes')).toBe(true);

    const m2 = parsePrometheus((await get(`${w2.dashboardUrl!}/metrics`)).text);
    expect(metric(m2, 'dd_worker_tasks', { state: 'memory' })).toBe(1);
    expect(metric(m2, 'dd_worker_transfer_outgoing_total')).toBe(1);
    expect(metric(m2, 'dd_worker_transfer_outgoing_bytes_total')).toBeGreaterThanOrEqual(65536);
  });

  test('closing the worker closes its HTTP server', async () => {
    const w = await Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', dashboardAddress: ':0', logger: quiet });
    const url = w.dashboardUrl!;
    expect((await get(`${url}/health`)).status).toBe(200);
    await w.close();
    await expect(fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });

  test('a taken port fails the start with a clear error and leaves nothing behind', async () => {
    const port = workers[0]!.http!.port;
    await expect(Worker.start({ scheduler: scheduler.address, nthreads: 1, executor: 'inline', dashboardAddress: port, logger: quiet }))
      .rejects.toThrow(/EADDRINUSE/);
  });
});
