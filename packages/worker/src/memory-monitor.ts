// Watches the process's memory (RSS) against the worker's memory limit, every 200 ms by default
// (the reference's memory_monitor):
//
//   above spill x limit   collect garbage first (at most once a second; the reference's
//                         throttled gc.collect()): much of the excess can be buffers nothing
//                         references any more (garbage.ts). Otherwise spill least recently used
//                         results until, by estimate, the process is back under target x limit
//                         (RSS itself falls only after a GC)
//   above pause x limit   pause: no new task starts (and no new fetch) until memory falls below
//   terminate             is the nanny's business (it watches from outside and restarts us)
//
// No state of its own beyond `paused` and the time of its last collection: `check()` is a step
// given a memory reading, so tests drive it with a fake reading.

import { formatBytes } from '@dd/protocol';
import type { SpillStore } from './spill-store';

export interface MemoryFractions {
  /** Managed bytes (sizeof of results) above target x limit are spilled. false: no spilling by bytes. */
  target: number | false;
  /** Process memory above spill x limit spills too. false: off. */
  spill: number | false;
  /** Process memory above pause x limit pauses the worker. false: off. */
  pause: number | false;
  /** Process memory above terminate x limit: the nanny restarts the worker. false: off. */
  terminate: number | false;
}

export const DEFAULT_MEMORY_FRACTIONS: Readonly<MemoryFractions> = Object.freeze({
  target: 0.6,
  spill: 0.7,
  pause: 0.8,
  terminate: 0.95,
});

export interface MemoryMonitorOptions {
  /** Bytes; 0 disables the monitor. */
  limit: number;
  fractions: MemoryFractions;
  /** Spillable store, if the worker spills. */
  store: SpillStore | undefined;
  /** Process memory now (default: RSS). */
  processMemory: () => number;
  /** Called when the worker should pause (true) or may resume (false). */
  onPause: (paused: boolean, memory: number) => void;
  /** Collects garbage if the process is above the level where it matters; true if it did. */
  collectGarbage?: (memory: number) => boolean;
  /** Least time between two collections of the monitor (default 1000 ms). */
  garbageIntervalMs?: number;
  logger: { warn(msg: string, ...rest: unknown[]): void; debug?(msg: string, ...rest: unknown[]): void };
}

export class MemoryMonitor {
  paused = false;
  private timer: NodeJS.Timeout | undefined;
  private lastSpillWarning = 0;
  private lastCollection = -Infinity;

  constructor(private readonly o: MemoryMonitorOptions) {}

  start(intervalMs: number): void {
    if (this.o.limit <= 0 || this.timer !== undefined) return;
    const { spill, pause } = this.o.fractions;
    if (spill === false && pause === false) return;
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private collect(memory: number): boolean {
    const { collectGarbage, garbageIntervalMs = 1000 } = this.o;
    if (collectGarbage === undefined) return false;
    const now = performance.now();
    if (now - this.lastCollection < garbageIntervalMs) return false;
    if (!collectGarbage(memory)) return false;
    this.lastCollection = now;
    this.o.logger.debug?.(`process memory ${formatBytes(memory)} above ${pct(this.o.fractions.spill || 0)} of ${formatBytes(this.o.limit)}: collected garbage`);
    return true;
  }

  /** One step: spill and pause/unpause according to the current process memory. */
  check(memory = this.o.processMemory()): void {
    const { limit, fractions, store } = this.o;
    if (limit <= 0) return;
    if (fractions.spill !== false && memory > fractions.spill * limit && this.collect(memory)) {
      // RSS shows what the collection freed only later: the next check spills if it must.
    } else if (fractions.spill !== false && store !== undefined && memory > fractions.spill * limit) {
      const goal = (fractions.target === false ? fractions.spill : fractions.target) * limit;
      let freed = 0;
      let count = 0;
      const writeFailures = store.stats.writeFailures;
      while (memory - freed > goal) {
        const n = store.evict();
        if (n < 0) break;
        freed += n;
        count++;
      }
      const now = Date.now();
      if (count > 0) {
        this.o.logger.debug?.(`process memory ${formatBytes(memory)} above ${pct(fractions.spill)} of ${formatBytes(limit)}: spilled ${count} values (${formatBytes(freed)})`);
      } else if (store.stats.writeFailures > writeFailures) {
        // There is data to spill but its file could not be written: the store warns about that
        // (once a minute), and "nothing left to spill" would be wrong.
      } else if (now - this.lastSpillWarning > 5_000) {
        this.lastSpillWarning = now;
        this.o.logger.warn(`process memory ${formatBytes(memory)} is above ${pct(fractions.spill)} of the limit ${formatBytes(limit)} but there is no data left to spill (${formatBytes(store.memoryBytes)} managed in memory)`);
      }
    }
    if (fractions.pause !== false) {
      const over = memory > fractions.pause * limit;
      if (over && !this.paused) {
        this.paused = true;
        this.o.logger.warn(`process memory ${formatBytes(memory)} is above ${pct(fractions.pause)} of the limit ${formatBytes(limit)}: pausing (no new tasks start until it falls)`);
        this.o.onPause(true, memory);
      } else if (!over && this.paused) {
        this.paused = false;
        this.o.logger.warn(`process memory ${formatBytes(memory)} is back under ${pct(fractions.pause)} of the limit ${formatBytes(limit)}: resuming`);
        this.o.onPause(false, memory);
      }
    }
  }
}

function pct(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}
