// Garbage collection under a memory limit.
//
// The reference frees a result the moment its last reference goes (CPython's reference
// counting). V8 frees an unreachable Buffer only at its next garbage collection, and it
// schedules collections by the size of its JavaScript heap, where a Buffer counts a few dozen
// bytes whatever its size. A worker that spills 8 MiB results to disk, or copies them into an
// executor thread for a task, leaves hundreds of MiB of unreachable buffers behind faster than
// V8 decides to collect them: measured on `dd-worker --memory-limit 300MB` with 120 results of
// 8 MiB, RSS reached 95 % of the limit with nothing left to spill, and the nanny restarted the
// worker (a forced collection brought RSS from 361 to 49 MiB).
//
// So a worker with a memory limit keeps a garbage debt: the bytes it just made unreachable
// (values spilled or freed, dependency copies of finished tasks). When the debt passes a share
// of the limit, and the process is above the level where memory matters (the target fraction),
// it collects. Collections are rare (one per `everyBytes` of garbage) and cheap (the JavaScript
// heap is small; the buffers are freed outside it), and never run without a memory limit.

import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let cached: (() => void) | null | undefined;

/**
 * V8's gc() for this isolate (main thread or worker thread), or undefined when it cannot be
 * had. Without `--expose-gc` on the command line: turn the flag on, then take `gc` from a fresh
 * context, which V8 creates with the function installed.
 */
export function garbageCollector(): (() => void) | undefined {
  if (cached !== undefined) return cached ?? undefined;
  const global = globalThis as { gc?: unknown };
  if (typeof global.gc === 'function') {
    cached = global.gc as () => void;
  } else {
    try {
      v8.setFlagsFromString('--expose-gc');
      const gc: unknown = vm.runInNewContext('gc');
      cached = typeof gc === 'function' ? (gc as () => void) : null;
    } catch {
      cached = null;
    }
  }
  return cached ?? undefined;
}

export interface GarbageDebtOptions {
  /** Collect once this many bytes became garbage since the last collection. */
  everyBytes: number;
  /** ... and only if the process uses more than this (bytes of RSS). */
  aboveBytes: number;
  /** Process memory now (default: RSS). */
  processMemory?: () => number;
  /** The collector (default: V8's, see garbageCollector). */
  collect?: (() => void) | undefined;
}

/** Settings for a worker with `limit` bytes of memory and fractions target/spill. */
export function garbageDebtSettings(limit: number, target: number | false, spill: number | false): { everyBytes: number; aboveBytes: number } | undefined {
  if (!(limit > 0) || limit === Infinity) return undefined;
  const level = target !== false ? target : spill !== false ? spill : undefined;
  if (level === undefined) return undefined;
  // 5 % of the limit: for a 300 MiB worker, a collection per ~15 MiB made unreachable.
  return { everyBytes: Math.max(4 << 20, Math.floor(limit * 0.05)), aboveBytes: Math.floor(limit * level) };
}

export class GarbageDebt {
  private debt = 0;
  /** Collections run (diagnostics and tests). */
  collections = 0;
  private readonly processMemory: () => number;
  private readonly collect: (() => void) | undefined;

  constructor(private readonly o: GarbageDebtOptions) {
    this.processMemory = o.processMemory ?? (() => process.memoryUsage.rss());
    this.collect = o.collect ?? garbageCollector();
  }

  /** `bytes` just became unreachable; collects if the debt and the process's memory call for it. */
  add(bytes: number): void {
    if (!(bytes > 0)) return;
    this.debt += bytes;
    if (this.debt < this.o.everyBytes) return;
    this.debt = 0;
    if (this.collect !== undefined && this.processMemory() > this.o.aboveBytes) {
      this.collect();
      this.collections++;
    }
  }

  /** Collects now if the process is above the level (whatever the debt). */
  collectIfAbove(memory = this.processMemory()): boolean {
    if (this.collect === undefined || memory <= this.o.aboveBytes) return false;
    this.debt = 0;
    this.collect();
    this.collections++;
    return true;
  }
}

/**
 * The environment to start a worker process with. glibc's malloc keeps freed memory for reuse
 * instead of returning it to the system, and after the first large buffer is freed it raises its
 * mmap threshold so later large buffers come from that retained heap too: measured with 16 MiB
 * results under a 600 MiB limit, RSS peaked at 594 MiB (a worker under its nanny is restarted at
 * 570) though at most 352 MiB of results were held; with the trim threshold at 64 KiB, as the
 * reference's nanny sets it, the peak was 481 MiB. A value the user set is kept.
 */
export function workerProcessEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { MALLOC_TRIM_THRESHOLD_: '65536', ...env };
}
