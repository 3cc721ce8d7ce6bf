// The dashboard's HTTP server: JSON/text endpoints, /metrics, server-rendered /info pages, the
// live pages (a static shell plus the bundled app from dist/web) and the /eventstream WebSocket.
// Read-only: GET and HEAD only; nothing here can change the scheduler.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { Collector, type CollectorOptions, type Snapshot } from './collector';
import { page } from './html';
import { taskPage, workerPage, workersPage } from './info-pages';
import { SchedulerMetrics } from './metrics';
import type { EventStreamMessage } from './snapshot-types';
import type { SchedulerView } from './view';
import { listenHttp } from '@dd/comm';

export type { EventStreamMessage };

export interface DashboardOptions extends CollectorOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one. Default 8787. */
  port?: number;
  /** How often live pages get an update, ms. Default 500. */
  updateIntervalMs?: number;
  /** Task-stream records a client gets at most per update. Default 5,000. */
  maxRecordsPerUpdate?: number;
}

const SITEMAP = [
  '/status',
  '/workers',
  '/tasks',
  '/graph',
  '/info',
  '/info/main/workers.html',
  '/info/worker/{address}.html',
  '/info/task/{key}.html',
  '/health',
  '/metrics',
  '/json/identity.json',
  '/json/counts.json',
  '/json/graph.json',
  '/json/index.html',
  '/sitemap.json',
  '/eventstream',
  '/statics/{file}',
];

const LIVE_PAGES: Record<string, string> = { '/status': 'Status', '/workers': 'Workers', '/tasks': 'Tasks', '/graph': 'Graph' };

const STATIC_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

export class DashboardServer {
  readonly collector: Collector;
  readonly metrics: SchedulerMetrics;
  private readonly http: HttpServer;
  private readonly wss: WebSocketServer;
  private readonly clients = new Map<WebSocket, { lastSeq: number; stream: boolean }>();
  private readonly staticDir: string;
  private readonly staticCache = new Map<string, Buffer>();
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private urlValue = '';

  /** Start serving the dashboard of `source` (a Scheduler, or anything of the SchedulerView shape). */
  static async start(source: SchedulerView, options: DashboardOptions = {}): Promise<DashboardServer> {
    const d = new DashboardServer(source, options);
    await d.listen(options.host ?? '127.0.0.1', options.port ?? 8787);
    return d;
  }

  private constructor(
    readonly source: SchedulerView,
    private readonly options: DashboardOptions,
  ) {
    this.collector = new Collector(source, options);
    this.metrics = new SchedulerMetrics(this.collector);
    // Built by build-web.js into dist/web (from src/ under jest and from dist/ once built).
    this.staticDir = join(__dirname, '..', 'dist', 'web');
    this.http = createServer((req, res) => this.handle(req, res));
    this.http.keepAliveTimeout = 5000;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
    this.http.on('upgrade', (req, socket, head) => {
      if (urlPath(req) !== '/eventstream') {
        refuseUpgrade(socket, 404, 'Not Found', `no WebSocket at ${urlPath(req)}; the live updates are at /eventstream\n`);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.addClient(ws, req));
    });
  }

  private async listen(host: string, port: number): Promise<void> {
    this.urlValue = await listenHttp(this.http, host, port);
  }

  /** e.g. `http://127.0.0.1:8787` */
  get url(): string {
    return this.urlValue;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer);
      this.timer = undefined;
      for (const ws of this.clients.keys()) ws.terminate();
      this.clients.clear();
      this.wss.close();
      this.collector.close();
      this.http.closeAllConnections();
      await new Promise<void>((resolve) => this.http.close(() => resolve()));
    })();
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, 'text/plain; charset=utf-8', 'read-only: GET and HEAD only\n', { allow: 'GET, HEAD' });
        return;
      }
      void this.route(req, res, urlPath(req)).catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `error: ${(err as Error).message}\n`);
        else res.destroy();
      });
    } catch (err) {
      send(res, 500, 'text/plain; charset=utf-8', `error: ${(err as Error).message}\n`);
    }
  }

  private async route(_req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const html = 'text/html; charset=utf-8';
    const json = (body: unknown) => send(res, 200, 'application/json', JSON.stringify(body));
    const live = LIVE_PAGES[path];
    if (live !== undefined) {
      send(res, 200, html, page(live, '<noscript>This page needs JavaScript.</noscript>', { page: path.slice(1), live: true }));
      return;
    }
    switch (path) {
      case '/':
        return redirect(res, '/status');
      case '/info':
      case '/info/':
        return redirect(res, '/info/main/workers.html');
      case '/health':
        return send(res, 200, 'text/plain; charset=utf-8', 'ok');
      case '/metrics':
        return send(res, 200, this.metrics.contentType, await this.metrics.text());
      case '/json/identity.json':
        return json(this.identity());
      case '/json/counts.json': {
        const c = this.collector.counts();
        return json({ ...c, ...c.states });
      }
      case '/json/graph.json':
        return json(this.graph());
      case '/json/index.html':
        return send(res, 200, html, page('JSON', '<ul><li><a href="/json/identity.json">identity.json</a></li><li><a href="/json/counts.json">counts.json</a></li><li><a href="/json/graph.json">graph.json</a></li></ul>'));
      case '/sitemap.json':
        return json({ paths: SITEMAP });
      case '/info/main/workers.html':
        return send(res, 200, html, workersPage(this.collector));
      case '/info/main/logs.html':
        return send(res, 200, html, this.logsPage());
    }
    let m = /^\/info\/worker\/(.+)\.html$/.exec(path);
    if (m !== null) {
      const body = workerPage(this.collector, safeDecode(m[1] as string));
      return body === undefined ? notFound(res, 'no such worker') : send(res, 200, html, body);
    }
    m = /^\/info\/task\/(.+)\.html$/.exec(path);
    if (m !== null) {
      const body = taskPage(this.collector, safeDecode(m[1] as string));
      return body === undefined ? notFound(res, 'no such task (it may have been forgotten)') : send(res, 200, html, body);
    }
    m = /^\/statics\/([a-z0-9._-]+)$/i.exec(path);
    if (m !== null) {
      const file = m[1] as string;
      const type = STATIC_TYPES[file.slice(file.lastIndexOf('.'))];
      const body = type === undefined ? undefined : this.staticFile(file);
      return body === undefined ? notFound(res, 'no such file (is @dd/dashboard built? npm run build)') : send(res, 200, type as string, body, { 'cache-control': 'no-cache' });
    }
    notFound(res, 'not found; see /sitemap.json');
  }

  private staticFile(name: string): Buffer | undefined {
    let b = this.staticCache.get(name);
    if (b === undefined) {
      try {
        b = readFileSync(join(this.staticDir, name));
      } catch {
        return undefined;
      }
      this.staticCache.set(name, b);
    }
    return b;
  }

  identity(): Record<string, unknown> {
    const workers: Record<string, unknown> = {};
    for (const w of this.collector.workers()) workers[w.address] = w;
    return { type: 'Scheduler', id: this.source.id, address: this.source.address, started: this.source.started, workers };
  }

  /**
   * The current graph for /graph: the tasks that are not yet done or erred, plus their direct
   * dependencies, capped at `limit` nodes (waiting/processing first), with edges among them.
   */
  graph(limit = 2000): { nodes: Array<{ key: string; prefix: string; state: string }>; edges: Array<[number, number]>; total: number; truncated: boolean } {
    const tasks = this.source.state.tasks;
    const picked = new Map<string, number>();
    const nodes: Array<{ key: string; prefix: string; state: string }> = [];
    const add = (key: string, prefix: string, state: string) => {
      if (picked.has(key) || nodes.length >= limit) return;
      picked.set(key, nodes.length);
      nodes.push({ key, prefix, state });
    };
    // Active tasks first, then the rest; stop scanning once full.
    for (const pass of [0, 1]) {
      for (const ts of tasks.values()) {
        if (nodes.length >= limit) break;
        const active = ts.state === 'processing' || ts.state === 'waiting' || ts.state === 'no-worker';
        if ((pass === 0) !== active) continue;
        add(ts.key, ts.prefix.name, ts.state);
        if (pass === 0) for (const d of ts.dependencies) add(d.key, d.prefix.name, d.state);
      }
    }
    const edges: Array<[number, number]> = [];
    for (const [key, i] of picked) {
      const ts = tasks.get(key);
      if (ts === undefined) continue;
      for (const d of ts.dependencies) {
        const j = picked.get(d.key);
        if (j !== undefined) edges.push([j, i]);
      }
    }
    return { nodes, edges, total: tasks.size, truncated: nodes.length < tasks.size };
  }

  private logsPage(): string {
    // The scheduler's recent transitions (its story ring): the newest 500 rows.
    const rows = this.source.state
      .story()
      .slice(-500)
      .reverse()
      .map((e) => `<tr><td>${escHtml(e[0])}</td><td>${escHtml(e[1])}</td><td>${escHtml(e[2])}</td><td>${escHtml(e[4])}</td></tr>`)
      .join('');
    return page('Logs', `<h1>Recent transitions</h1><table class="table"><thead><tr><th>key</th><th>from</th><th>to</th><th>stimulus</th></tr></thead><tbody>${rows}</tbody></table>`);
  }

  // -------------------------------------------------------------------------------------------
  // /eventstream: one shared snapshot per tick, per-client task-stream deltas

  private addClient(ws: WebSocket, req: IncomingMessage): void {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const wantsStream = q.get('stream') !== '0';
    const history = Math.max(0, Math.min(Number(q.get('history') ?? 2000) || 0, this.collector.capacity));
    this.clients.set(ws, { lastSeq: Math.max(0, this.collector.lastSeq - history), stream: wantsStream });
    ws.on('close', () => this.clients.delete(ws));
    ws.on('error', () => this.clients.delete(ws));
    this.timer ??= setInterval(() => this.tick(), this.options.updateIntervalMs ?? 500);
    this.timer.unref();
    this.sendUpdate(ws, this.collector.snapshot());
  }

  private tick(): void {
    if (this.clients.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const snap = this.collector.snapshot();
    for (const ws of this.clients.keys()) this.sendUpdate(ws, snap);
  }

  private sendUpdate(ws: WebSocket, snap: Snapshot): void {
    const c = this.clients.get(ws);
    if (c === undefined || ws.readyState !== ws.OPEN) return;
    // A slow page skips updates instead of queueing them.
    if (ws.bufferedAmount > 4 * 2 ** 20) return;
    const stream = c.stream ? this.collector.streamSince(c.lastSeq, this.options.maxRecordsPerUpdate ?? 5000) : [];
    c.lastSeq = this.collector.lastSeq;
    const msg: EventStreamMessage = { type: 'update', ...snap, stream, lastSeq: c.lastSeq };
    ws.send(JSON.stringify(msg));
  }
}

function urlPath(req: IncomingMessage): string {
  const u = req.url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function escHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-type': type, 'content-length': String(buf.length), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : buf);
}

function redirect(res: ServerResponse, to: string): void {
  res.writeHead(302, { location: to, 'content-length': '0' });
  res.end();
}

function notFound(res: ServerResponse, why: string): void {
  send(res, 404, 'text/plain; charset=utf-8', `${why}\n`);
}

/**
 * Answers an upgrade request that no WebSocket serves with a plain HTTP error, as the ws library
 * does for its own refusals, instead of closing the connection without a word.
 */
function refuseUpgrade(socket: Duplex, status: number, reason: string, body: string): void {
  socket.on('error', () => socket.destroy()); // a peer gone meanwhile: nothing to tell it
  // Destroyed once written: the server allows half-open sockets, so end() alone would keep this
  // one (and close()) waiting for a peer that never closes its side.
  socket.once('finish', () => socket.destroy());
  const head = [`HTTP/1.1 ${status} ${reason}`, 'Connection: close', 'Content-Type: text/plain; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
