// Server-rendered /info pages: workers, one worker, one task (state, dependencies, story).
// Lists are capped so a page stays small with 100,000 tasks known.

import type { Collector } from './collector';
import { workerSnapshot } from './collector';
import { formatBytes } from '@dd/protocol';
import { esc, fmtAge, page } from './html';
import type { TaskView } from './view';

const LIST_CAP = 200;

export const workerLink = (address: string) => `<a href="/info/worker/${encodeURIComponent(address)}.html">${esc(address)}</a>`;
export const taskLink = (key: string) => `<a href="/info/task/${encodeURIComponent(key)}.html">${esc(key)}</a>`;

export function workersPage(c: Collector): string {
  const now = Date.now();
  const rows = c.workers().map(
    (w) =>
      `<tr><td>${workerLink(w.address)}</td><td>${esc(w.name)}</td><td>${w.nthreads}</td><td>${formatBytes(w.memory)}</td><td>${formatBytes(w.memoryLimit)}</td><td>${w.cpu}%</td><td>${w.processing}</td><td>${w.inMemory}</td><td>${esc(w.status)}</td><td>${fmtAge(now - w.lastSeen)}</td><td>${w.dashboard !== undefined ? `<a href="${esc(w.dashboard)}">status</a>` : ''}</td></tr>`,
  );
  return page(
    'Workers',
    `<h1>Workers</h1><table class="table"><thead><tr><th>address</th><th>name</th><th>threads</th><th>memory</th><th>limit</th><th>cpu</th><th>processing</th><th>in memory</th><th>status</th><th>last seen</th><th>page</th></tr></thead><tbody>${rows.join('')}</tbody></table>
<p><a href="/info/main/logs.html">scheduler story (recent transitions)</a></p>`,
  );
}

function list<T>(items: Iterable<T>, render: (t: T) => string): string {
  const out: string[] = [];
  let n = 0;
  for (const t of items) {
    if (n++ >= LIST_CAP) break;
    out.push(`<li>${render(t)}</li>`);
  }
  const extra = n > LIST_CAP ? `<li>… (first ${LIST_CAP} shown)</li>` : '';
  return out.length === 0 ? '<p class="muted">none</p>' : `<ul>${out.join('')}${extra}</ul>`;
}

export function workerPage(c: Collector, address: string): string | undefined {
  const ws = c.source.state.workers.get(address);
  if (ws === undefined) return undefined;
  const w = workerSnapshot(ws);
  const fields: Array<[string, string]> = [
    ['name', esc(w.name)],
    ['host', esc(w.host)],
    ['threads', String(w.nthreads)],
    ['status', esc(w.status)],
    ['memory (rss)', formatBytes(w.memory)],
    ['managed', formatBytes(w.managed)],
    ['spilled', formatBytes(w.spilled)],
    ['memory limit', formatBytes(w.memoryLimit)],
    ['cpu', `${w.cpu}%`],
    ['bytes in flight', formatBytes(w.bytesInFlight)],
    ['occupancy', `${w.occupancy.toFixed(3)} s`],
    ['last seen', `${fmtAge(Date.now() - w.lastSeen)} ago`],
  ];
  if (w.dashboard !== undefined) fields.push(['worker page', `<a href="${esc(w.dashboard)}">${esc(w.dashboard)}</a>`]);
  return page(
    `Worker ${address}`,
    `<h1>Worker ${esc(address)}</h1>${kv(fields)}
<h2>Processing (${ws.processing.size})</h2>${list(ws.processing.keys(), (t) => taskLink((t as TaskView).key))}
<h2>In memory (${ws.hasWhat.size})</h2>${list(ws.hasWhat, (t) => taskLink((t as TaskView).key))}`,
  );
}

function kv(fields: Array<[string, string]>): string {
  return `<table class="kv">${fields.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>`;
}

export function taskPage(c: Collector, key: string): string | undefined {
  const ts = c.source.state.tasks.get(key);
  if (ts === undefined) return undefined;
  const fields: Array<[string, string]> = [
    ['state', `<span class="state ${esc(ts.state)}">${esc(ts.state)}</span>`],
    ['prefix', esc(ts.prefix.name)],
    ['group', esc(ts.group.name)],
    ['bytes', ts.nbytes >= 0 ? formatBytes(ts.nbytes) : 'unknown'],
    ['type', esc(ts.type ?? '')],
    ['priority', esc(JSON.stringify(ts.priority))],
    ['processing on', ts.processingOn ? workerLink(ts.processingOn.address) : ''],
  ];
  if (ts.exception) fields.push(['exception', `<code>${esc(ts.exception.name)}: ${esc(ts.exception.message)}</code>`]);
  const story = c.source.state.story(key).slice(-LIST_CAP);
  const storyRows = story
    .map((e) => `<tr><td>${esc(e[1])}</td><td>${esc(e[2])}</td><td>${esc(Object.entries(e[3]).map(([k, v]) => `${k}: ${v}`).join(', '))}</td><td>${esc(e[4])}</td><td>${new Date(e[5]).toISOString()}</td></tr>`)
    .join('');
  return page(
    `Task ${key}`,
    `<h1>Task ${esc(key)}</h1>${kv(fields)}
<h2>Held by</h2>${list(ts.whoHas, (w) => workerLink(w.address))}
<h2>Dependencies (${ts.dependencies.size})</h2>${list(ts.dependencies, (d) => `${taskLink(d.key)} <span class="state ${esc(d.state)}">${esc(d.state)}</span>`)}
<h2>Dependents (${ts.dependents.size})</h2>${list(ts.dependents, (d) => `${taskLink(d.key)} <span class="state ${esc(d.state)}">${esc(d.state)}</span>`)}
<h2>Story</h2><table class="table"><thead><tr><th>from</th><th>to</th><th>recommendations</th><th>stimulus</th><th>time</th></tr></thead><tbody>${storyRows}</tbody></table>`,
  );
}
