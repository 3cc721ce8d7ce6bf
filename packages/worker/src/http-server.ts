// A worker's own HTTP endpoints (the reference's "Worker HTTP"): /health, /metrics in Prometheus
// text format (prom-client, a registry per worker), a small server-rendered /status page and
// /sitemap.json. Read-only (GET and HEAD), fed from a structural view of the Worker, so it can be
// tested against any object of that shape. Off unless `dashboardAddress` is given (dd-worker
// turns it on).

import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { formatBytes } from '@dd/protocol';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { TransferStats } from './transfer-stats';
import { listenHttp } from '@dd/comm';

/** What the endpoints read from a worker. `Worker` satisfies it. */
export interface WorkerHttpSource {
  readonly address: string;
  readonly name: string;
  readonly status: string;
  readonly options: { readonly nthreads: number; readonly memoryLimit: number };
  readonly state: {
    readonly stateCounts: Readonly<Record<string, number>>;
    readonly executing: ReadonlySet<{ readonly key: string }>;
    readonly readyCount: number;
    readonly inFlightWorkers: ReadonlyMap<string, ReadonlySet<unknown>>;
    readonly bytesInFlight: number;
  };
  readonly data: { readonly size: number; readonly memoryBytes: number; readonly spilledBytes: number };
  readonly transfers: TransferStats;
  /** `get-data` requests being served right now. */
  readonly outgoingTransfers: number;
}

export interface WorkerHttpOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

const SITEMAP = ['/status', '/health', '/metrics', '/sitemap.json'];

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly lag: IntervalHistogram;

  constructor(private readonly w: WorkerHttpSource) {
    const registers = [this.registry];
    const gauge = (name: string, help: string, collect: (g: Gauge<string>) => void, labelNames: string[] = []) =>
      new Gauge({ name, help, labelNames, registers, collect() { collect(this); } });
    const counter = (name: string, help: string, value: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          // The worker keeps the running totals; the counter shows them as they are.
          this.reset();
          const v = value();
          if (v > 0) this.inc(v);
        },
      });
    this.lag = monitorEventLoopDelay({ resolution: 10 });
    this.lag.enable();

    gauge('dd_worker_tasks', 'Tasks the worker knows, by worker state (waiting, ready, executing, fetch, flight, memory, ...)', (g) => {
      g.reset();
      for (const [state, n] of Object.entries(w.state.stateCounts)) g.set({ state }, n);
    }, ['state']);
    gauge('dd_worker_executing', 'Task executions running (cancelled ones still occupying a thread included)', (g) => g.set(w.state.executing.size));
    gauge('dd_worker_ready', 'Tasks ready or constrained, waiting for a thread', (g) => g.set(w.state.readyCount));
    gauge('dd_worker_threads', 'Threads (tasks run at once)', (g) => g.set(w.options.nthreads));
    gauge('dd_worker_memory_bytes', 'Resident set size of the worker process', (g) => g.set(process.memoryUsage.rss()));
    gauge('dd_worker_managed_bytes', 'Bytes of task results held in memory (as sized by the worker)', (g) => g.set(w.data.memoryBytes));
    gauge('dd_worker_spilled_bytes', 'Bytes of task results spilled to disk', (g) => g.set(w.data.spilledBytes));
    gauge('dd_worker_memory_limit_bytes', 'Memory limit of the worker (0: none)', (g) => g.set(w.options.memoryLimit));
    gauge('dd_worker_keys_in_memory', 'Keys held by the data store', (g) => g.set(w.data.size));
    gauge('dd_worker_bytes_in_flight', 'Bytes being fetched from peers', (g) => g.set(w.state.bytesInFlight));
    gauge('dd_worker_transfers', 'Transfers in progress: incoming (peers fetched from) and outgoing (get-data requests served)', (g) => {
      g.set({ direction: 'incoming' }, w.state.inFlightWorkers.size);
      g.set({ direction: 'outgoing' }, w.outgoingTransfers);
    }, ['direction']);
    counter('dd_worker_transfer_incoming_total', 'get-data requests to peers that brought data', () => w.transfers.incomingCount);
    counter('dd_worker_transfer_incoming_bytes_total', 'Bytes fetched from peers', () => w.transfers.incomingBytes);
    counter('dd_worker_transfer_outgoing_total', 'get-data requests served with data', () => w.transfers.outgoingCount);
    counter('dd_worker_transfer_outgoing_bytes_total', 'Bytes served to peers and clients', () => w.transfers.outgoingBytes);
    counter('dd_worker_transfer_outgoing_busy_total', 'get-data requests answered busy', () => w.transfers.outgoingBusy);
    gauge('dd_worker_event_loop_lag_seconds', 'Event-loop delay of the worker process since the previous scrape', (g) => {
      const h = this.lag;
      const has = h.count > 0;
      g.set({ stat: 'mean' }, has ? h.mean / 1e9 : 0);
      g.set({ stat: 'max' }, has ? h.max / 1e9 : 0);
      g.set({ stat: 'p99' }, has ? h.percentile(99) / 1e9 : 0);
      h.reset();
    }, ['stat']);
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.lag.disable();
    this.registry.clear();
  }
}

export class WorkerHttpServer {
  readonly metrics: WorkerMetrics;
  private readonly http: HttpServer;
  private urlValue = '';
  private closing: Promise<void> | undefined;

  static async start(source: WorkerHttpSource, options: WorkerHttpOptions): Promise<WorkerHttpServer> {
    const s = new WorkerHttpServer(source);
    try {
      await s.listen(options.host, options.port);
    } catch (err) {
      s.metrics.close();
      throw err;
    }
    return s;
  }

  private constructor(private readonly source: WorkerHttpSource) {
    this.metrics = new WorkerMetrics(source);
    this.http = createServer((req, res) => this.handle(req, res));
    this.http.keepAliveTimeout = 5000;
  }

  private async listen(host: string, port: number): Promise<void> {
    this.urlValue = await listenHttp(this.http, host, port);
  }

  /** e.g. `http://127.0.0.1:40123` */
  get url(): string {
    return this.urlValue;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.metrics.close();
      this.http.closeAllConnections();
      this.http.close(() => resolve());
    });
    return this.closing;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'read-only: GET and HEAD only\n', { allow: 'GET, HEAD' });
      return;
    }
    const u = req.url ?? '/';
    const path = u.includes('?') ? u.slice(0, u.indexOf('?')) : u;
    void this.route(res, path).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `error: ${(err as Error)?.message}\n`);
      else res.destroy();
    });
  }

  private async route(res: ServerResponse, path: string): Promise<void> {
    switch (path) {
      case '/':
        res.writeHead(302, { location: '/status', 'content-length': '0' });
        res.end();
        return;
      case '/health':
        return send(res, 200, 'text/plain; charset=utf-8', 'ok');
      case '/metrics':
        return send(res, 200, this.metrics.contentType, await this.metrics.text());
      case '/sitemap.json':
        return send(res, 200, 'application/json', JSON.stringify({ paths: SITEMAP }));
      case '/status':
        return send(res, 200, 'text/html; charset=utf-8', statusPage(this.source));
      default:
        return send(res, 404, 'text/plain; charset=utf-8', 'not found; see /sitemap.json\n');
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'content-type': type, 'content-length': String(buf.length), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : buf);
}

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A plain page that reloads itself every 2 s: identity, memory, tasks by state, what runs, transfers. */
function statusPage(w: WorkerHttpSource): string {
  const rows = (pairs: Array<[string, string]>) => pairs.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('');
  const states = Object.entries(w.state.stateCounts).filter(([, n]) => n > 0);
  const executing = [...w.state.executing].slice(0, 50).map((t) => `<li>${esc(t.key)}</li>`).join('');
  const t = w.transfers;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>dd worker ${esc(w.name)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin-bottom:1em}th,td{text-align:left;padding:2px 12px 2px 0}th{font-weight:600;color:#555}h2{font-size:15px;margin:1.2em 0 .4em}</style>
</head><body>
<h1>Worker ${esc(w.address)}</h1>
<table>${rows([
    ['name', esc(w.name)],
    ['status', esc(w.status)],
    ['threads', String(w.options.nthreads)],
    ['memory (rss)', formatBytes(process.memoryUsage.rss())],
    ['managed', `${formatBytes(w.data.memoryBytes)} in ${w.data.size} keys`],
    ['spilled', formatBytes(w.data.spilledBytes)],
    ['memory limit', w.options.memoryLimit > 0 ? formatBytes(w.options.memoryLimit) : 'none'],
  ])}</table>
<h2>Tasks by state</h2><table>${states.length === 0 ? '<tr><td>none</td></tr>' : rows(states.map(([s, n]) => [s, String(n)]))}</table>
<h2>Executing (${w.state.executing.size})</h2>${executing === '' ? '<p>nothing</p>' : `<ul>${executing}</ul>`}
<h2>Transfers</h2><table>${rows([
    ['fetching from peers', `${w.state.inFlightWorkers.size} peers, ${formatBytes(w.state.bytesInFlight)} in flight`],
    ['serving', `${w.outgoingTransfers} requests`],
    ['fetched in total', `${t.incomingCount} requests, ${formatBytes(t.incomingBytes)}`],
    ['served in total', `${t.outgoingCount} requests, ${formatBytes(t.outgoingBytes)} (${t.outgoingBusy} answered busy)`],
  ])}</table>
<p><a href="/metrics">/metrics</a> · <a href="/health">/health</a> · <a href="/sitemap.json">/sitemap.json</a></p>
</body></html>
`;
}
