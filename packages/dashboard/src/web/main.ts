// The dashboard's browser app: one bundle for every live page (the page name is on <body>).
// Data arrives over /eventstream (one aggregated update every few hundred ms, task-stream records
// as deltas); drawing is plain DOM and canvas, redrawn at most once per animation frame.

// The units subpath only: the page bundle must not pull in the wire codecs.
import { formatBytes } from '@dd/protocol/units';
import type { EventStreamMessage, StreamRecord, WorkerSnapshot } from '../snapshot-types';

const page = document.body.dataset['page'] ?? 'status';
const app = document.getElementById('app') as HTMLElement;
const conn = document.getElementById('conn') as HTMLElement;

// ---------------------------------------------------------------------------------------------
// Formatting and colours

function fmtAge(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
}
function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
// Prefix colours: a qualitative palette (no reds: red means transfer), handed out in order of first
// appearance so the prefixes on screen differ; hues beyond the palette are derived from a hash.
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#edc948', '#76b7b2', '#9c755f', '#bab0ac', '#1f77b4', '#8c564b', '#17becf', '#bcbd22'];
const colours = new Map<string, string>();
function prefixColour(prefix: string): string {
  let c = colours.get(prefix);
  if (c === undefined) {
    if (colours.size < PALETTE.length) c = PALETTE[colours.size] as string;
    else {
      let h = 2166136261;
      for (let i = 0; i < prefix.length; i++) h = Math.imul(h ^ prefix.charCodeAt(i), 16777619);
      c = `hsl(${30 + ((h >>> 0) % 300)}, 55%, 55%)`;
    }
    colours.set(prefix, c);
  }
  return c;
}
// Transfers are a thin red band at the top of a row, spilling/reading back a thin violet band at
// the bottom, so both stay readable over the prefix colours of the compute bars.
const DISK_COLOUR = '#6d28d9';
const ACTION_COLOURS: Record<string, string> = { transfer: '#e5342a', erred: '#111', 'disk-read': DISK_COLOUR, 'disk-write': DISK_COLOUR };

// ---------------------------------------------------------------------------------------------
// State fed by the event stream

let last: EventStreamMessage | undefined;
let receivedAt = 0;
const records: StreamRecord[] = [];
const MAX_RECORDS = 20_000;
let updates = 0;

function serverNow(): number {
  return last === undefined ? Date.now() : last.time + (performance.now() - receivedAt);
}

function connect(): void {
  const wantsStream = page === 'status' || page === 'tasks';
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/eventstream?stream=${wantsStream ? 1 : 0}&history=${page === 'tasks' ? 20000 : 5000}`);
  ws.onopen = () => {
    conn.textContent = 'live';
    conn.className = 'conn live';
  };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(String(ev.data)) as EventStreamMessage;
    last = msg;
    receivedAt = performance.now();
    updates++;
    for (const r of msg.stream) records.push(r);
    if (records.length > MAX_RECORDS) records.splice(0, records.length - MAX_RECORDS);
    requestDraw();
  };
  ws.onclose = () => {
    conn.textContent = 'disconnected, retrying…';
    conn.className = 'conn';
    setTimeout(connect, 1000);
  };
}

let drawPending = false;
function requestDraw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

// ---------------------------------------------------------------------------------------------
// Task stream (canvas): one row per worker thread, a bar per task

function drawTaskStream(canvas: HTMLCanvasElement, windowMs: number, rowHeight: number): void {
  const workers = last?.workers ?? [];
  const rows: Array<{ worker: WorkerSnapshot; lane: number }> = [];
  const rowOf = new Map<string, number>();
  for (const w of workers) {
    for (let lane = 0; lane < w.nthreads; lane++) {
      rowOf.set(`${w.address}#${lane}`, rows.length);
      rows.push({ worker: w, lane });
    }
  }
  const labelW = 150;
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 600;
  const cssH = Math.max(60, rows.length * rowHeight + 22);
  canvas.style.height = `${cssH}px`;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  const plotW = cssW - labelW - 4;
  const now = serverNow();
  const t0 = now - windowMs;
  const x = (t: number) => labelW + ((t - t0) / windowMs) * plotW;
  rows.forEach((r, i) => {
    const y = i * rowHeight;
    if (i % 2 === 0) {
      ctx.fillStyle = '#fafafa';
      ctx.fillRect(labelW, y, plotW, rowHeight);
    }
    ctx.fillStyle = '#555';
    const label = `${r.worker.name.length > 18 ? `…${r.worker.name.slice(-17)}` : r.worker.name} #${r.lane}`;
    ctx.fillText(label, 2, y + rowHeight / 2);
  });
  let bars = 0;
  for (const rec of records) {
    if (rec.stop < t0) continue;
    const row = rowOf.get(`${rec.worker}#${rec.lane}`);
    if (row === undefined) continue;
    const x0 = Math.max(labelW, x(rec.start));
    const w = Math.max(2, x(rec.stop) - x0);
    const y = row * rowHeight;
    ctx.fillStyle = ACTION_COLOURS[rec.action] ?? prefixColour(rec.prefix);
    const band = Math.max(2, rowHeight * 0.3);
    if (rec.action === 'transfer') ctx.fillRect(x0, y + 1, w, band);
    else if (rec.action === 'disk-read' || rec.action === 'disk-write') ctx.fillRect(x0, y + rowHeight - 1 - band, w, band);
    else ctx.fillRect(x0, y + 2, w, rowHeight - 4);
    bars++;
  }
  // Time axis.
  const axisY = rows.length * rowHeight + 12;
  ctx.fillStyle = '#888';
  for (let s = 0; s <= windowMs / 1000; s += windowMs > 20_000 ? 10 : 2) {
    const xx = x(now - s * 1000);
    ctx.fillRect(xx, axisY - 10, 1, 3);
    ctx.fillText(s === 0 ? 'now' : `-${s}s`, s === 0 ? xx - 22 : xx - 8, axisY);
  }
  canvas.dataset['bars'] = String(bars);
  canvas.dataset['rows'] = String(rows.length);
}

// ---------------------------------------------------------------------------------------------
// Pages

function statsLine(): string {
  if (last === undefined) return '';
  const c = last.counts;
  const t = last.totals;
  let mem = 0;
  let limit = 0;
  for (const w of last.workers) {
    mem += w.memory;
    limit += w.memoryLimit;
  }
  return [
    `<span>workers <b>${c.workers}</b></span>`,
    `<span>threads <b>${c.threads}</b></span>`,
    `<span>tasks <b>${c.tasks}</b></span>`,
    `<span>processing <b>${c.states['processing'] ?? 0}</b></span>`,
    `<span>in memory <b>${c.states['memory'] ?? 0}</b></span>`,
    `<span>erred <b>${c.states['erred'] ?? 0}</b></span>`,
    `<span>tasks/s <b>${t.taskRate.toFixed(1)}</b></span>`,
    `<span>memory <b>${formatBytes(mem)}</b>${limit > 0 ? ` / ${formatBytes(limit)}` : ''}</span>`,
    `<span>transferred <b>${formatBytes(t.bytesTransferred)}</b></span>`,
    `<span>loop lag <b>${t.eventLoopLagMs.max.toFixed(0)} ms</b></span>`,
  ].join('');
}

function progressHtml(): string {
  const ps = (last?.prefixes ?? []).slice(0, 40);
  if (ps.length === 0) return '<p class="muted">no tasks</p>';
  return `<div class="prog">${ps
    .map((p) => {
      const total = Math.max(1, p.alive);
      const seg = (cls: string, n: number) => (n > 0 ? `<span class="${cls}" style="width:${(100 * n) / total}%"></span>` : '');
      return `<div class="name" title="${esc(p.name)}">${esc(p.name)}</div><div class="bar" data-prefix="${esc(p.name)}">${seg('s-memory', p.memory)}${seg('s-erred', p.erred)}${seg('s-processing', p.processing)}${seg('s-released', p.released)}${seg('s-waiting', p.waiting + p.noWorker)}</div><div>${p.memory}/${p.alive}${p.processing ? ` · ${p.processing} run` : ''}${p.erred ? ` · ${p.erred} err` : ''}</div>`;
    })
    .join('')}</div>`;
}

function memoryHtml(): string {
  const ws = last?.workers ?? [];
  if (ws.length === 0) return '<p class="muted">no workers</p>';
  const max = Math.max(1, ...ws.map((w) => (w.memoryLimit > 0 ? w.memoryLimit : w.memory)));
  return `<div class="mem">${ws
    .map((w) => {
      const limit = w.memoryLimit > 0 ? w.memoryLimit : max;
      const pct = (n: number) => `${Math.min(100, (100 * n) / limit)}%`;
      const unmanaged = Math.max(0, w.memory - w.managed);
      return `<div class="name" title="${esc(w.address)}">${esc(w.name)}</div><div class="bar"><span class="managed" style="width:${pct(w.managed)}"></span><span class="unmanaged" style="width:${pct(unmanaged)}"></span><span class="spilled" style="width:${pct(w.spilled)}"></span></div><div>${formatBytes(w.memory)}${w.memoryLimit > 0 ? ` / ${formatBytes(w.memoryLimit)}` : ''}</div>`;
    })
    .join('')}</div>`;
}

function setup(): void {
  if (page === 'status') {
    app.innerHTML = `<div class="stats" id="stats"></div>
<div class="grid"><div class="panel"><h2>Task stream</h2><canvas id="stream"></canvas>
<div class="legend" id="legend"></div></div>
<div><div class="panel"><h2>Progress</h2><div id="progress"></div></div>
<div class="panel" style="margin-top:10px"><h2>Memory by worker</h2><div id="memory"></div></div></div></div>`;
  } else if (page === 'tasks') {
    app.innerHTML = `<div class="stats" id="stats"></div><div class="panel"><h2>Task stream (last 60 s)</h2><canvas id="stream"></canvas><div class="legend" id="legend"></div></div>`;
  } else if (page === 'workers') {
    app.innerHTML = `<div class="stats" id="stats"></div><table class="table" id="workers-table"><thead><tr><th>address</th><th>name</th><th class="num">threads</th><th>memory</th><th class="num">limit</th><th class="num">cpu</th><th class="num">processing</th><th class="num">in memory</th><th class="num">bytes in flight</th><th>status</th><th class="num">last seen</th><th>page</th></tr></thead><tbody></tbody></table>`;
  } else if (page === 'graph') {
    app.innerHTML = `<div class="stats" id="stats"></div><div class="panel"><h2>Graph <span class="muted" id="graph-note"></span></h2><canvas id="graph"></canvas>
<div class="legend"><span><i class="s-waiting"></i>waiting</span><span><i class="s-processing"></i>processing</span><span><i class="s-memory"></i>memory</span><span><i class="s-erred"></i>erred</span><span><i class="s-released"></i>released</span></div></div>`;
    void loadGraph();
    setInterval(() => void loadGraph(), 2000);
  }
}

function legendHtml(): string {
  const seen = new Set<string>();
  for (let i = records.length - 1; i >= 0 && seen.size < 12; i--) {
    const r = records[i] as StreamRecord;
    if (r.action === 'compute') seen.add(r.prefix);
  }
  return [...seen].map((p) => `<span><i style="background:${prefixColour(p)}"></i>${esc(p)}</span>`).join('') + '<span><i style="background:#e5342a"></i>transfer</span>'
    + `<span><i style="background:${DISK_COLOUR}"></i>spill / read back</span><span><i style="background:#111"></i>erred</span>`;
}

function workersRows(): string {
  const now = serverNow();
  return (last?.workers ?? [])
    .map((w) => {
      const frac = w.memoryLimit > 0 ? Math.min(1, w.memory / w.memoryLimit) : 0;
      return `<tr data-address="${esc(w.address)}"><td><a href="/info/worker/${encodeURIComponent(w.address)}.html">${esc(w.address)}</a></td><td>${esc(w.name)}</td><td class="num">${w.nthreads}</td><td><span class="membar"><span style="width:${(frac * 100).toFixed(1)}%"></span></span>${formatBytes(w.memory)}</td><td class="num">${w.memoryLimit > 0 ? formatBytes(w.memoryLimit) : '—'}</td><td class="num">${w.cpu}%</td><td class="num processing">${w.processing}</td><td class="num">${w.inMemory}</td><td class="num">${formatBytes(w.bytesInFlight)}</td><td>${esc(w.status)}</td><td class="num">${fmtAge(now - w.lastSeen)}</td><td>${w.dashboard !== undefined ? `<a class="worker-page" href="${esc(w.dashboard)}">status</a>` : ''}</td></tr>`;
    })
    .join('');
}

function setHtml(id: string, html: string): void {
  const el = document.getElementById(id);
  if (el !== null && el.innerHTML !== html) el.innerHTML = html;
}

function draw(): void {
  setHtml('stats', statsLine());
  document.body.dataset['updates'] = String(updates);
  const stream = document.getElementById('stream') as HTMLCanvasElement | null;
  if (stream !== null) {
    drawTaskStream(stream, page === 'tasks' ? 60_000 : 10_000, page === 'tasks' ? 16 : 20);
    setHtml('legend', legendHtml());
  }
  setHtml('progress', progressHtml());
  setHtml('memory', memoryHtml());
  const tbody = document.querySelector('#workers-table tbody');
  if (tbody !== null) tbody.innerHTML = workersRows();
}

// ---------------------------------------------------------------------------------------------
// Graph: layered by dependency depth, coloured by state (capped by the server)

interface GraphJson {
  nodes: Array<{ key: string; prefix: string; state: string }>;
  edges: Array<[number, number]>;
  total: number;
  truncated: boolean;
}
const STATE_COLOURS: Record<string, string> = { waiting: '#c9ccd1', 'no-worker': '#f59e0b', processing: '#93c5fd', memory: '#3b82f6', erred: '#111', released: '#cbd5e1' };

async function loadGraph(): Promise<void> {
  const res = await fetch('/json/graph.json');
  const g = (await res.json()) as GraphJson;
  const depth = new Array<number>(g.nodes.length).fill(0);
  // Longest path from a root; edges go dependency -> dependent. A few relaxation passes suffice for display.
  for (let pass = 0; pass < 50; pass++) {
    let changed = false;
    for (const [a, b] of g.edges) {
      if ((depth[b] as number) < (depth[a] as number) + 1) {
        depth[b] = (depth[a] as number) + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  const layers: number[][] = [];
  depth.forEach((d, i) => (layers[d] ??= []).push(i));
  const canvas = document.getElementById('graph') as HTMLCanvasElement;
  const cssW = canvas.clientWidth || 800;
  const widest = Math.max(1, ...layers.map((l) => l?.length ?? 0));
  const cssH = Math.min(2000, Math.max(200, layers.length * 40 + 20));
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = `${cssH}px`;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const pos: Array<[number, number]> = [];
  layers.forEach((l, d) => (l ?? []).forEach((n, i) => (pos[n] = [((i + 0.5) / l.length) * cssW, 10 + (d + 0.5) * ((cssH - 20) / Math.max(1, layers.length))])));
  ctx.strokeStyle = 'rgba(0,0,0,0.12)';
  ctx.beginPath();
  for (const [a, b] of g.edges) {
    const pa = pos[a];
    const pb = pos[b];
    if (pa === undefined || pb === undefined) continue;
    ctx.moveTo(pa[0], pa[1]);
    ctx.lineTo(pb[0], pb[1]);
  }
  ctx.stroke();
  const r = widest > 400 ? 1.5 : widest > 100 ? 3 : 5;
  g.nodes.forEach((n, i) => {
    const p = pos[i];
    if (p === undefined) return;
    ctx.fillStyle = STATE_COLOURS[n.state] ?? '#999';
    ctx.fillRect(p[0] - r, p[1] - r, 2 * r, 2 * r);
  });
  canvas.dataset['nodes'] = String(g.nodes.length);
  setHtml('graph-note', `${g.nodes.length} of ${g.total} tasks${g.truncated ? ' (active tasks first)' : ''}`);
}

setup();
connect();
// Keep the task stream moving between updates.
if (page === 'status' || page === 'tasks') setInterval(requestDraw, 250);
