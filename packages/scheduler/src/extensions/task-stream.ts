// The task stream (the reference's get_task_stream): for each task a worker reports finished or
// erred, when and where it ran, from the startstops the worker sends with task-finished /
// task-erred (compute, transfer, disk-read, disk-write; milliseconds since the epoch). Kept in a
// bounded ring, oldest dropped first; fed by an observer, so the state machine is untouched.

import type { TaskStreamRecord } from '@dd/protocol';
import type { SchedulerEvent } from '../events';
import type { ExtensionHost, ExtensionMsg, SchedulerExtension } from './extension';

export type { TaskStreamRecord };

export class TaskStreamExtension implements SchedulerExtension {
  readonly name = 'task-stream';
  private readonly ring: TaskStreamRecord[] = [];
  private pos = 0;

  constructor(
    host: ExtensionHost,
    /** Records kept (default 100 000). */
    private readonly capacity = 100_000,
  ) {
    host.addObserver({ onStimuli: (events) => this.observe(events) });
  }

  readonly handlers = {
    /**
     * `{start?, stop?, count?}`: records (oldest first) with some activity between `start` and
     * `stop` (ms since the epoch), the last `count` of them when given.
     */
    'get-task-stream': (m: ExtensionMsg) => {
      const start = optNumber(m, 'start');
      const stop = optNumber(m, 'stop');
      const count = optNumber(m, 'count');
      let out = this.records();
      if (start !== undefined || stop !== undefined) {
        const lo = start ?? -Infinity;
        const hi = stop ?? Infinity;
        out = out.filter((r) => r.startstops.some((s) => s.stop >= lo && s.start <= hi));
      }
      if (count !== undefined) out = count <= 0 ? [] : out.slice(-Math.floor(count));
      return out;
    },
  };

  /** All records, oldest first. */
  records(): TaskStreamRecord[] {
    if (this.ring.length < this.capacity) return this.ring.slice();
    return [...this.ring.slice(this.pos), ...this.ring.slice(0, this.pos)];
  }

  private push(r: TaskStreamRecord): void {
    if (this.ring.length < this.capacity) this.ring.push(r);
    else {
      this.ring[this.pos] = r;
      this.pos = (this.pos + 1) % this.capacity;
    }
  }

  private observe(events: readonly SchedulerEvent[]): void {
    for (const ev of events) {
      if (ev.kind === 'task-finished') {
        if (ev.startstops === undefined || ev.startstops.length === 0) continue;
        const r: TaskStreamRecord = { key: ev.key, worker: ev.worker, status: 'OK', startstops: ev.startstops };
        if (ev.nbytes >= 0) r.nbytes = ev.nbytes;
        if (ev.type !== undefined) r.type = ev.type;
        this.push(r);
      } else if (ev.kind === 'task-erred') {
        this.push({ key: ev.key, worker: ev.worker, status: 'error', startstops: ev.startstops ?? [] });
      }
    }
  }
}

function optNumber(m: ExtensionMsg, field: string): number | undefined {
  const v = m[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`get-task-stream: field "${field}" must be a number`);
  return v;
}
