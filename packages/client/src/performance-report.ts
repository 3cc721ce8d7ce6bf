// performanceReport(path, async () => {...}): runs the body, then writes one self-contained HTML
// file (inline CSS and SVG, no script, nothing loaded from the network) about the work done
// meanwhile: the task stream (a row per worker thread, a bar per task coloured by prefix,
// transfers in red, errors in black), compute time by prefix, transfers between workers, and the
// cluster's structured events. The data is what the scheduler knows: its task stream
// (`get-task-stream`: start/stop times of compute and transfers that workers report with each
// finished task) and its event log (`get-events`).

import { writeFile } from 'node:fs/promises';
import { formatBytes, keySplit } from '@dd/protocol';
import type { Client } from './client';
import { defaultClient } from './default-client';

export interface PerformanceReportOptions {
  /** The client whose cluster is reported. Default: the default client (the last connected). */
  client?: Client;
  /** Heading of the report. Default 'dd performance report'. */
  title?: string;
}

/** A task-stream record as the scheduler's `get-task-stream` returns it. */
export interface TaskStreamRecord {
  key: string;
  worker: string;
  status: 'OK' | 'error';
  startstops: Array<{ action: string; start: number; stop: number; source?: string }>;
  nbytes?: number;
  type?: string;
}

export interface PerformanceReportData {
  title: string;
  start: number;
  stop: number;
  records: TaskStreamRecord[];
  /** `[topic, time in seconds, message]`, oldest first. */
  events: Array<[string, number, unknown]>;
  /** Why the task stream is missing, when it is. */
  note?: string;
}

/**
 * Runs `body` and writes a report of the cluster's work during it to `path` (also when the body
 * throws; the error is rethrown after). Resolves to what the body returned.
 */
export async function performanceReport<T>(path: string, body: () => Promise<T> | T, options: PerformanceReportOptions = {}): Promise<T> {
  const client = options.client ?? defaultClient();
  const start = Date.now();
  let result: T | undefined;
  let failure: { error: unknown } | undefined;
  try {
    result = await body();
  } catch (error) {
    failure = { error };
  }
  const stop = Date.now();
  const data = await collectReportData(client, start, stop, options.title ?? 'dd performance report');
  await writeFile(path, renderPerformanceReport(data));
  if (failure !== undefined) throw failure.error;
  return result as T;
}

async function collectReportData(client: Client, start: number, stop: number, title: string): Promise<PerformanceReportData> {
  const data: PerformanceReportData = { title, start, stop, records: [], events: [] };
  try {
    const records = await client._rpc<TaskStreamRecord[]>('get-task-stream', { start, stop });
    data.records = Array.isArray(records) ? records : [];
  } catch (err) {
    data.note = `the scheduler gave no task stream (${(err as Error)?.message ?? err})`;
  }
  try {
    const byTopic = await client._rpc<Record<string, Array<[number, unknown]>>>('get-events', {});
    for (const [topic, list] of Object.entries(byTopic ?? {})) {
      for (const [t, msg] of list) if (t * 1000 >= start && t * 1000 <= stop) data.events.push([topic, t, msg]);
    }
    data.events.sort((a, b) => a[1] - b[1]);
  } catch {
    /* a scheduler without events: the section stays empty */
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Rendering (pure: data in, HTML out)

const MAX_BARS = 20_000;
const MAX_EVENTS = 500;

interface Bar {
  worker: string;
  lane: number;
  start: number;
  stop: number;
  kind: 'compute' | 'transfer' | 'error' | 'disk';
  prefix: string;
  key: string;
  source?: string;
}

export function renderPerformanceReport(d: PerformanceReportData): string {
  const records = d.records;
  let t0 = d.start;
  let t1 = d.stop;
  for (const r of records) {
    for (const s of r.startstops) {
      if (s.start < t0) t0 = s.start;
      if (s.stop > t1) t1 = s.stop;
    }
  }

  // Per-prefix compute statistics.
  const prefixes = new Map<string, { count: number; erred: number; total: number; max: number; nbytes: number }>();
  let transfers = 0;
  let transferMs = 0;
  const pairs = new Map<string, { count: number; ms: number }>();
  for (const r of records) {
    const prefix = keySplit(r.key);
    let p = prefixes.get(prefix);
    if (p === undefined) prefixes.set(prefix, (p = { count: 0, erred: 0, total: 0, max: 0, nbytes: 0 }));
    p.count++;
    if (r.status === 'error') p.erred++;
    p.nbytes += r.nbytes ?? 0;
    for (const s of r.startstops) {
      const ms = Math.max(0, s.stop - s.start);
      if (s.action === 'compute') {
        p.total += ms;
        p.max = Math.max(p.max, ms);
      } else if (s.action === 'transfer') {
        transfers++;
        transferMs += ms;
        const pair = `${s.source ?? '?'} → ${r.worker}`;
        const q = pairs.get(pair) ?? { count: 0, ms: 0 };
        q.count++;
        q.ms += ms;
        pairs.set(pair, q);
      }
    }
  }
  const prefixList = [...prefixes.entries()].sort((a, b) => b[1].total - a[1].total);
  const colour = new Map(prefixList.map(([name], i) => [name, prefixColour(name, i)]));

  // Lanes: per worker, intervals packed into the first free row (the scheduler does not know
  // which thread ran a task, so rows are as many as the overlap needs).
  const bars: Bar[] = [];
  const byWorker = new Map<string, Bar[]>();
  for (const r of records) {
    const prefix = keySplit(r.key);
    for (const s of r.startstops) {
      const kind: Bar['kind'] = s.action === 'transfer' ? 'transfer' : s.action === 'compute' ? (r.status === 'error' ? 'error' : 'compute') : 'disk';
      const b: Bar = { worker: r.worker, lane: 0, start: s.start, stop: Math.max(s.start, s.stop), kind, prefix, key: r.key };
      if (s.source !== undefined) b.source = s.source;
      let list = byWorker.get(r.worker);
      if (list === undefined) byWorker.set(r.worker, (list = []));
      list.push(b);
    }
  }
  const workers = [...byWorker.keys()].sort();
  const rows: Array<{ worker: string; lane: number }> = [];
  for (const w of workers) {
    const list = (byWorker.get(w) as Bar[]).sort((a, b) => a.start - b.start);
    const ends: number[] = [];
    for (const b of list) {
      let lane = ends.findIndex((e) => e <= b.start);
      if (lane < 0) {
        lane = ends.length;
        ends.push(0);
      }
      ends[lane] = b.stop;
      b.lane = rows.length + lane;
      if (bars.length < MAX_BARS) bars.push(b);
    }
    for (let i = 0; i < ends.length; i++) rows.push({ worker: w, lane: i });
  }

  const span = Math.max(1, t1 - t0);
  const W = 1100;
  const labelW = 190;
  const rowH = 18;
  const plotW = W - labelW - 10;
  const x = (t: number) => labelW + ((t - t0) / span) * plotW;
  const streamH = Math.max(1, rows.length) * rowH + 30;
  const svgBars = bars
    .map((b) => {
      const fill = b.kind === 'transfer' ? '#e5342a' : b.kind === 'error' ? '#111' : b.kind === 'disk' ? '#f0a030' : (colour.get(b.prefix) as string);
      const w = Math.max(1, x(b.stop) - x(b.start));
      const what = b.kind === 'transfer' ? `transfer of a dependency of ${b.key} from ${b.source ?? '?'}` : `${b.kind} ${b.key}`;
      return `<rect class="bar ${b.kind}" x="${x(b.start).toFixed(1)}" y="${b.lane * rowH + 2}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="${fill}"><title>${esc(what)}: ${fmtMs(b.stop - b.start)} (at +${fmtMs(b.start - t0)})</title></rect>`;
    })
    .join('');
  const rowLabels = rows
    .map((r, i) => `<text x="4" y="${i * rowH + rowH - 5}" class="lbl">${r.lane === 0 ? esc(clip(r.worker, 28)) : ''}</text>${r.lane === 0 && i > 0 ? `<line x1="0" x2="${W}" y1="${i * rowH}" y2="${i * rowH}" class="sep"/>` : ''}`)
    .join('');
  const ticks = Array.from({ length: 6 }, (_, i) => {
    const t = t0 + (span * i) / 5;
    return `<line x1="${x(t)}" x2="${x(t)}" y1="0" y2="${streamH - 22}" class="tick"/><text x="${x(t)}" y="${streamH - 8}" class="axis" text-anchor="${i === 0 ? 'start' : i === 5 ? 'end' : 'middle'}">${i === 0 ? '0' : fmtMs(t - t0)}</text>`;
  }).join('');
  const streamSvg = records.length === 0
    ? `<p class="muted">No tasks finished during the report${d.note ? `: ${esc(d.note)}` : ''}.</p>`
    : `<svg class="stream" width="${W}" height="${streamH}" viewBox="0 0 ${W} ${streamH}" role="img" aria-label="task stream">${ticks}${rowLabels}${svgBars}</svg>${bars.length >= MAX_BARS ? `<p class="muted">First ${MAX_BARS} bars drawn.</p>` : ''}`;

  const maxTotal = Math.max(1, ...prefixList.map(([, p]) => p.total));
  const durRows = prefixList
    .map(([name, p]) => `<tr><td><i class="sw" style="background:${colour.get(name)}"></i>${esc(name)}</td><td class="num">${p.count}</td><td class="num">${p.erred}</td><td class="num">${fmtMs(p.total)}</td><td class="num">${fmtMs(p.total / Math.max(1, p.count))}</td><td class="num">${fmtMs(p.max)}</td><td class="num">${formatBytes(p.nbytes)}</td><td><svg width="220" height="12"><rect x="0" y="1" height="10" width="${((220 * p.total) / maxTotal).toFixed(1)}" fill="${colour.get(name)}"/></svg></td></tr>`)
    .join('');
  const pairRows = [...pairs.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 50)
    .map(([pair, q]) => `<tr><td>${esc(pair)}</td><td class="num">${q.count}</td><td class="num">${fmtMs(q.ms)}</td></tr>`)
    .join('');
  const eventRows = d.events
    .slice(-MAX_EVENTS)
    .map(([topic, t, msg]) => `<tr><td class="num">+${fmtMs(t * 1000 - t0)}</td><td>${esc(topic)}</td><td><code>${esc(clip(safeJson(msg), 300))}</code></td></tr>`)
    .join('');
  const erred = records.filter((r) => r.status === 'error').length;
  const computeMs = prefixList.reduce((a, [, p]) => a + p.total, 0);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(d.title)}</title>
<style>
body{font:13px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:20px 28px;color:#1d2329;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:26px 0 8px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
.muted{color:#6b737c}.summary{display:flex;gap:28px;flex-wrap:wrap;margin:12px 0}.summary div b{display:block;font-size:18px}
table{border-collapse:collapse}th,td{padding:3px 12px 3px 0;text-align:left;vertical-align:top}th{color:#59616a;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.sw{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
svg.stream{border:1px solid #e3e6ea;background:#fbfcfd}.lbl{font-size:11px;fill:#444}.axis{font-size:10px;fill:#6b737c}.tick{stroke:#e3e6ea}.sep{stroke:#d5d9de}
.legend span{margin-right:14px}code{font-size:12px}
</style></head>
<body>
<h1>${esc(d.title)}</h1>
<div class="muted">${esc(new Date(d.start).toISOString())} – ${esc(new Date(d.stop).toISOString())}</div>
<div class="summary">
<div><b>${fmtMs(d.stop - d.start)}</b>duration</div>
<div><b>${records.length}</b>tasks</div>
<div><b>${erred}</b>erred</div>
<div><b>${workers.length}</b>workers</div>
<div><b>${fmtMs(computeMs)}</b>compute time</div>
<div><b>${transfers}</b>transfers (${fmtMs(transferMs)})</div>
<div><b>${d.events.length}</b>events</div>
</div>
<h2>Task stream</h2>
<div class="legend">${prefixList.slice(0, 16).map(([name]) => `<span><i class="sw" style="background:${colour.get(name)}"></i>${esc(name)}</span>`).join('')}<span><i class="sw" style="background:#e5342a"></i>transfer</span><span><i class="sw" style="background:#111"></i>erred</span></div>
${streamSvg}
<h2>Task durations by prefix</h2>
${prefixList.length === 0 ? '<p class="muted">none</p>' : `<table><thead><tr><th>prefix</th><th class="num">tasks</th><th class="num">erred</th><th class="num">compute</th><th class="num">mean</th><th class="num">max</th><th class="num">result bytes</th><th>share</th></tr></thead><tbody>${durRows}</tbody></table>`}
<h2>Transfers</h2>
${pairs.size === 0 ? '<p class="muted">No transfer start/stop times in the task stream (none happened, or the workers did not report them).</p>' : `<table><thead><tr><th>from → to</th><th class="num">transfers</th><th class="num">time</th></tr></thead><tbody>${pairRows}</tbody></table>`}
<h2>Events</h2>
${d.events.length === 0 ? '<p class="muted">none</p>' : `<table><thead><tr><th class="num">at</th><th>topic</th><th>message</th></tr></thead><tbody>${eventRows}</tbody></table>`}
${d.note ? `<p class="muted">Note: ${esc(d.note)}</p>` : ''}
</body></html>
`;
}

function prefixColour(name: string, i: number): string {
  let h = 0;
  for (let k = 0; k < name.length; k++) h = (h * 31 + name.charCodeAt(k)) >>> 0;
  // Spread the first colours around the wheel, then vary by name; avoid the transfer red.
  const hue = (30 + i * 137.5 + (h % 17)) % 360;
  return `hsl(${hue.toFixed(0)} 62% 52%)`;
}

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function fmtMs(ms: number): string {
  if (!(ms >= 0)) return '0 ms';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return ms < 60_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

