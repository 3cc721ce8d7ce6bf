// Collects what the dashboard shows: the task stream (from the scheduler's observed stimuli), running
// totals (tasks done, bytes transferred), rates and event-loop lag, and aggregated snapshots of the
// scheduler's state. Every snapshot is O(workers + task groups), never O(tasks), so pages stay
// cheap with 100,000 tasks known; the task stream is a bounded ring.

import { LagMonitor } from './lag';
import type { Counts, PrefixProgress, Snapshot, StreamRecord, Totals, WorkerSnapshot } from './snapshot-types';
import type {
  AddKeysFields,
  ObservedEvent,
  SchedulerView,
  TaskErredFields,
  TaskFinishedFields,
  WorkerView,
} from './view';

export type { Counts, PrefixProgress, Snapshot, StreamRecord, Totals, WorkerSnapshot };

export interface CollectorOptions {
  /** Task stream records kept. Default 20,000. */
  streamCapacity?: number;
  clock?: () => number;
}

const STATES = ['released', 'waiting', 'no-worker', 'processing', 'memory', 'erred'] as const;
const RATE_WINDOW_MS = 5000;

export class Collector {
  readonly capacity: number;
  private readonly ring: (StreamRecord | undefined)[];
  private seq = 0;
  private readonly clock: () => number;
  private readonly lanes = new Map<string, number[]>();
  private readonly removeObserver: () => void;
  private readonly lag = new LagMonitor();
  private tasksFinished = 0;
  private tasksErred = 0;
  private bytesTransferred = 0;
  private transfers = 0;
  /** (time, tasksFinished) samples for the rate; at most one per 250 ms. */
  private rateSamples: Array<[number, number]> = [];
  private closed = false;

  constructor(
    readonly source: SchedulerView,
    options: CollectorOptions = {},
  ) {
    this.capacity = Math.max(1, options.streamCapacity ?? 20_000);
    this.ring = new Array(this.capacity);
    this.clock = options.clock ?? Date.now;
    this.removeObserver = source.addObserver({ onStimuli: (events) => this.observe(events), onClose: () => this.close() });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.removeObserver();
    this.lag.close();
  }

  // -------------------------------------------------------------------------------------------
  // Observed stimuli

  private observe(events: readonly ObservedEvent[]): void {
    const now = this.clock();
    for (const ev of events) {
      switch (ev.kind) {
        case 'task-finished': {
          const e = ev as unknown as TaskFinishedFields;
          this.tasksFinished++;
          const prefix = this.prefixOf(e.key);
          let any = false;
          for (const ss of e.startstops ?? []) {
            if (!(ss.stop >= ss.start)) continue;
            any = true;
            const lane = ss.action === 'compute' ? this.lane(e.worker, ss.start, ss.stop) : 0;
            this.push({ key: e.key, prefix, worker: e.worker, lane, action: ss.action, start: ss.start, stop: ss.stop });
          }
          if (!any) this.push({ key: e.key, prefix, worker: e.worker, lane: this.lane(e.worker, now, now), action: 'compute', start: now, stop: now });
          break;
        }
        case 'task-erred': {
          const e = ev as unknown as TaskErredFields;
          this.tasksErred++;
          this.push({ key: e.key, prefix: this.prefixOf(e.key), worker: e.worker, lane: this.lane(e.worker, now, now), action: 'erred', start: now, stop: now });
          break;
        }
        case 'add-keys': {
          // A worker fetched these keys from peers: count them here. Their transfer bars come with
          // the task-finished of the task that needed them (its startstops carry the transfers).
          const e = ev as unknown as AddKeysFields;
          let bytes = 0;
          for (const k of e.keys) bytes += Math.max(0, e.nbytes[k] ?? 0);
          this.bytesTransferred += bytes;
          this.transfers += e.keys.length;
          break;
        }
      }
    }
  }

  private prefixOf(key: string): string {
    return this.source.state.tasks.get(key)?.prefix.name ?? key.replace(/-[0-9a-f]{8,}.*$/i, '');
  }

  /**
   * The thread lane a compute bar goes in: the first lane free at `start`, else the one that
   * frees earliest. The scheduler does not know worker threads; this packs bars as they ran.
   */
  private lane(worker: string, start: number, stop: number): number {
    let lanes = this.lanes.get(worker);
    if (lanes === undefined) {
      const n = this.source.state.workers.get(worker)?.nthreads ?? 1;
      lanes = new Array<number>(Math.max(1, n)).fill(0);
      this.lanes.set(worker, lanes);
    }
    let best = 0;
    for (let i = 0; i < lanes.length; i++) {
      if ((lanes[i] as number) <= start + 0.5) {
        best = i;
        break;
      }
      if ((lanes[i] as number) < (lanes[best] as number)) best = i;
    }
    lanes[best] = Math.max(lanes[best] as number, stop);
    return best;
  }

  private push(r: Omit<StreamRecord, 'seq'>): void {
    const rec = r as StreamRecord;
    rec.seq = ++this.seq;
    this.ring[rec.seq % this.capacity] = rec;
  }

  /** The id of the newest record (0: none yet). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Records after `afterSeq`, oldest first, at most `limit` (the newest ones when there are more). */
  streamSince(afterSeq: number, limit = this.capacity): StreamRecord[] {
    const from = Math.max(afterSeq + 1, this.seq - Math.min(limit, this.capacity) + 1, 1);
    const out: StreamRecord[] = [];
    for (let s = from; s <= this.seq; s++) {
      const r = this.ring[s % this.capacity];
      if (r !== undefined && r.seq === s) out.push(r);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Aggregates

  counts(): Counts {
    const st = this.source.state;
    const states: Record<string, number> = {};
    for (const s of STATES) states[s] = 0;
    for (const g of st.groups.values()) for (const s of STATES) states[s] = (states[s] as number) + (g.states[s] ?? 0);
    let threads = 0;
    for (const ws of st.workers.values()) threads += ws.nthreads;
    return { tasks: st.tasks.size, workers: st.workers.size, clients: st.clients.size, threads, states };
  }

  totals(): Totals {
    const now = this.clock();
    const last = this.rateSamples[this.rateSamples.length - 1];
    if (last === undefined || now - last[0] >= 250) this.rateSamples.push([now, this.tasksFinished]);
    while (this.rateSamples.length > 2 && now - (this.rateSamples[0] as [number, number])[0] > RATE_WINDOW_MS) this.rateSamples.shift();
    const first = this.rateSamples[0] as [number, number];
    const dt = (now - first[0]) / 1000;
    const taskRate = dt > 0.2 ? (this.tasksFinished - first[1]) / dt : 0;
    return {
      tasksFinished: this.tasksFinished,
      tasksErred: this.tasksErred,
      bytesTransferred: this.bytesTransferred,
      transfers: this.transfers,
      transitions: this.source.state.transitionCounter,
      stolen: this.source.state.stolen ?? 0,
      taskRate,
      eventLoopLagMs: this.lag.stats(),
    };
  }

  workers(): WorkerSnapshot[] {
    const out: WorkerSnapshot[] = [];
    for (const ws of this.source.state.workers.values()) out.push(workerSnapshot(ws));
    out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    return out;
  }

  /** Progress per task prefix, for prefixes with tasks still known (largest first). */
  prefixes(): PrefixProgress[] {
    const by = new Map<string, PrefixProgress>();
    for (const g of this.source.state.groups.values()) {
      const s = g.states;
      const alive = g.total - (s['forgotten'] ?? 0);
      if (alive <= 0) continue;
      const name = g.prefix.name;
      let p = by.get(name);
      if (p === undefined) {
        p = { name, waiting: 0, noWorker: 0, processing: 0, memory: 0, erred: 0, released: 0, alive: 0, nbytes: 0 };
        by.set(name, p);
      }
      p.waiting += s['waiting'] ?? 0;
      p.noWorker += s['no-worker'] ?? 0;
      p.processing += s['processing'] ?? 0;
      p.memory += s['memory'] ?? 0;
      p.erred += s['erred'] ?? 0;
      p.released += s['released'] ?? 0;
      p.alive += alive;
      p.nbytes += g.nbytesInMemory;
    }
    return [...by.values()].sort((a, b) => b.alive - a.alive || (a.name < b.name ? -1 : 1));
  }

  snapshot(): Snapshot {
    return { time: this.clock(), counts: this.counts(), totals: this.totals(), workers: this.workers(), prefixes: this.prefixes() };
  }
}

export function workerSnapshot(ws: WorkerView): WorkerSnapshot {
  const m = ws.metrics;
  const port = ws.services?.['dashboard'];
  const out: WorkerSnapshot = {
    address: ws.address,
    name: ws.name,
    host: ws.host,
    nthreads: ws.nthreads,
    status: ws.status,
    memoryLimit: ws.memoryLimit,
    memory: m?.memory ?? ws.nbytes,
    managed: m?.managedBytes ?? ws.nbytes,
    spilled: m?.spilledBytes ?? 0,
    cpu: m?.cpu ?? 0,
    processing: ws.processing.size,
    inMemory: ws.hasWhat.size,
    bytesInFlight: m?.bytesInFlight ?? 0,
    occupancy: ws.occupancy,
    lastSeen: ws.lastSeen,
  };
  if (port !== undefined) out.dashboard = `http://${ws.host.includes(':') ? `[${ws.host}]` : ws.host}:${port}/status`;
  return out;
}
