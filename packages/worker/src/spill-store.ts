// A DataStore that keeps the most recently used values in memory and spills the least recently
// used ones to files when the bytes it holds in memory exceed a target (the reference's zict
// Buffer of a memory LRU over a file store). Spilled values come back transparently on `get`
// (a task's dependency, a peer's or the client's get-data): read, decoded, and kept in memory
// again as the most recently used, which may push others out.
//
// Synchronous on purpose: the state machine stores results with `set` inside a stimulus and the
// shell reads dependencies with `get`, and neither should turn async for a rare slow path.
// Files are @dd/protocol messages (encodeMessage + packFrames), so whatever can cross the wire
// can be spilled. A value that cannot be serialized (a function, an unregistered class) stays in
// memory, with one logged warning, and is never tried again.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeMessage, encodeMessage, encodePrelude, unpackFrames, type StartStop } from '@dd/protocol';
import type { DataStore } from './data-store';
import { LocalDirectoryError } from './errors';
import { notADirectoryError } from './local-directory';
import { sizeof } from './sizeof';

export interface SpillStoreOptions {
  /** Directory for spilled files (created when first needed); a function if known only later. */
  directory: string | (() => string);
  /** Keep at most this many bytes in memory (by nbytes); Infinity never spills on its own. */
  targetBytes: number;
  logger?: { warn(msg: string, ...rest: unknown[]): void; debug?(msg: string, ...rest: unknown[]): void };
  /**
   * Read spilled values back into shared memory (SharedArrayBuffer), so that handing one to an
   * executor thread shares it instead of copying it (as for large values from the network).
   */
  sharedMemory?: boolean;
  /** Told the bytes of each value the store lets go of (spilled or deleted): see garbage.ts. */
  onRelease?: (bytes: number) => void;
}

interface Spilled {
  file: string;
  nbytes: number;
}

/** Counts since the store was made (diagnostics and tests). */
export interface SpillStats {
  /** Values written to disk. */
  spilled: number;
  /** Values read back from disk. */
  unspilled: number;
  /** Values that could not be serialized and stay in memory. */
  unspillable: number;
  /** Writes that failed (a full disk, the spill folder gone); their values stayed in memory. */
  writeFailures: number;
  /** Time spent writing and reading, ms. */
  diskMs: number;
}

export class SpillStore implements DataStore {
  /** In memory, least recently used first (Map keeps insertion order; a use re-inserts). */
  private readonly fast = new Map<string, { value: unknown; nbytes: number }>();
  /** In memory for good: values that failed to serialize. */
  private readonly pinned = new Map<string, { value: unknown; nbytes: number }>();
  private readonly slow = new Map<string, Spilled>();
  private fastBytes = 0;
  private pinnedBytes = 0;
  private slowBytes = 0;
  private fileCounter = 0;
  /** When the last write failure was logged (warnWriteFailure), and failures since then. */
  private lastWriteWarning: number | undefined;
  private unwarnedWriteFailures = 0;
  /** Disk writes/reads not yet reported (bounded: a worker serving only peers may never report). */
  private diskActivity: StartStop[] = [];
  private dir: string | undefined;
  private readonly directoryOption: string | (() => string);
  private readonly logger: NonNullable<SpillStoreOptions['logger']>;
  targetBytes: number;
  private readonly sharedMemory: boolean;
  private readonly onRelease: ((bytes: number) => void) | undefined;
  readonly stats: SpillStats = { spilled: 0, unspilled: 0, unspillable: 0, writeFailures: 0, diskMs: 0 };

  constructor(options: SpillStoreOptions) {
    this.directoryOption = options.directory;
    this.targetBytes = options.targetBytes;
    this.sharedMemory = options.sharedMemory === true && typeof SharedArrayBuffer === 'function';
    this.onRelease = options.onRelease;
    this.logger = options.logger ?? { warn: (m, ...r) => console.warn(m, ...r) };
  }

  /** Where spilled files go (created on first use); LocalDirectoryError naming it if it cannot be made. */
  get directory(): string {
    if (this.dir === undefined) {
      const d = typeof this.directoryOption === 'function' ? this.directoryOption() : this.directoryOption;
      makeSpillDirectory(d);
      this.dir = d;
    }
    return this.dir;
  }

  has(key: string): boolean {
    return this.fast.has(key) || this.slow.has(key) || this.pinned.has(key);
  }

  get(key: string): unknown {
    const f = this.fast.get(key);
    if (f !== undefined) {
      // Most recently used now.
      this.fast.delete(key);
      this.fast.set(key, f);
      return f.value;
    }
    const p = this.pinned.get(key);
    if (p !== undefined) return p.value;
    const s = this.slow.get(key);
    if (s === undefined) return undefined;
    const value = this.readBack(key, s);
    this.slow.delete(key);
    this.slowBytes -= s.nbytes;
    fs.rmSync(s.file, { force: true });
    this.stats.unspilled++;
    this.fast.set(key, { value, nbytes: s.nbytes });
    this.fastBytes += s.nbytes;
    // Make room for it, but never by spilling the value just asked for.
    this.evictUntil(this.targetBytes, key);
    return value;
  }

  set(key: string, value: unknown, nbytes?: number): number {
    const n = nbytes ?? sizeof(value);
    this.delete(key);
    this.fast.set(key, { value, nbytes: n });
    this.fastBytes += n;
    this.evictUntil(this.targetBytes);
    return n;
  }

  delete(key: string): boolean {
    const f = this.fast.get(key);
    if (f !== undefined) {
      this.fast.delete(key);
      this.fastBytes -= f.nbytes;
      this.onRelease?.(f.nbytes);
      return true;
    }
    const p = this.pinned.get(key);
    if (p !== undefined) {
      this.pinned.delete(key);
      this.pinnedBytes -= p.nbytes;
      this.onRelease?.(p.nbytes);
      return true;
    }
    const s = this.slow.get(key);
    if (s !== undefined) {
      this.slow.delete(key);
      this.slowBytes -= s.nbytes;
      fs.rmSync(s.file, { force: true });
      return true;
    }
    return false;
  }

  nbytes(key: string): number | undefined {
    return this.fast.get(key)?.nbytes ?? this.slow.get(key)?.nbytes ?? this.pinned.get(key)?.nbytes;
  }

  *keys(): IterableIterator<string> {
    yield* this.fast.keys();
    yield* this.pinned.keys();
    yield* this.slow.keys();
  }

  get size(): number {
    return this.fast.size + this.pinned.size + this.slow.size;
  }

  get memoryBytes(): number {
    return this.fastBytes + this.pinnedBytes;
  }

  get spilledBytes(): number {
    return this.slowBytes;
  }

  /** Whether `key` is on disk now. */
  isSpilled(key: string): boolean {
    return this.slow.has(key);
  }

  /**
   * Spills the least recently used value to disk (process memory is high: the memory monitor).
   * Returns the bytes it accounted for, or -1 when nothing in memory can be spilled.
   */
  evict(): number {
    for (const [key, entry] of this.fast) {
      const outcome = this.spillOne(key, entry);
      if (outcome === 'spilled') return entry.nbytes;
      if (outcome === 'write-failed') return -1;
    }
    return -1;
  }

  /** Spills least recently used values until at most `bytes` are in memory (sparing `keep`). */
  private evictUntil(bytes: number, keep?: string): void {
    if (this.fastBytes + this.pinnedBytes <= bytes) return;
    for (const [key, entry] of this.fast) {
      if (this.fastBytes + this.pinnedBytes <= bytes) return;
      if (key === keep) continue;
      // The next write would most likely fail the same way (a full disk): try again next time.
      if (this.spillOne(key, entry) === 'write-failed') return;
    }
  }

  /**
   * Writes one value out. 'unspillable': it cannot be serialized, and stays in memory for good.
   * 'write-failed': its file could not be written (a full disk, the spill folder gone); it stays
   * in memory, and a later eviction tries again, as the reference's does.
   */
  private spillOne(key: string, entry: { value: unknown; nbytes: number }): 'spilled' | 'unspillable' | 'write-failed' {
    let frames: Uint8Array[];
    const t = performance.now();
    try {
      frames = encodeMessage(entry.value);
    } catch (err) {
      this.fast.delete(key);
      this.fastBytes -= entry.nbytes;
      this.pinned.set(key, entry);
      this.pinnedBytes += entry.nbytes;
      this.stats.unspillable++;
      this.logger.warn(`cannot spill ${key} to disk; keeping it in memory: ${(err as Error)?.message ?? String(err)}`);
      return 'unspillable';
    }
    const start = Date.now();
    let file: string | undefined;
    try {
      file = path.join(this.directory, `${++this.fileCounter}.dd`);
      // The packed layout (prelude, then the frames) written piece by piece: the frames of a large
      // value are views of it, and joining them first would copy all of it once more.
      writeAll(file, [encodePrelude(frames), ...frames]);
    } catch (err) {
      // As the reference does when spilling fails: the value stays in memory, and the worker
      // goes on (the memory monitor's pause and terminate thresholds still apply).
      if (file !== undefined) removePartialFile(file);
      this.stats.writeFailures++;
      this.warnWriteFailure(key, err);
      return 'write-failed';
    }
    this.noteDisk('disk-write', start);
    this.stats.diskMs += performance.now() - t;
    this.fast.delete(key);
    this.fastBytes -= entry.nbytes;
    this.slow.set(key, { file, nbytes: entry.nbytes });
    this.slowBytes += entry.nbytes;
    this.stats.spilled++;
    this.onRelease?.(entry.nbytes);
    return 'spilled';
  }

  /**
   * One warning per minute at most: a full disk fails every value the store tries to spill, and a
   * warning each would bury the log. The next warning says how many failed meanwhile.
   */
  private warnWriteFailure(key: string, err: unknown): void {
    const now = Date.now();
    if (this.lastWriteWarning !== undefined && now - this.lastWriteWarning >= 0 && now - this.lastWriteWarning < WRITE_WARNING_INTERVAL_MS) {
      this.unwarnedWriteFailures++;
      return;
    }
    const more = this.unwarnedWriteFailures > 0 ? ` (${this.unwarnedWriteFailures} more values could not be written since the last warning)` : '';
    this.lastWriteWarning = now;
    this.unwarnedWriteFailures = 0;
    this.logger.warn(`cannot write ${key} to disk; keeping it in memory: ${(err as Error)?.message ?? String(err)}${more}`);
  }

  private readBack(key: string, s: Spilled): unknown {
    const t = performance.now();
    const start = Date.now();
    try {
      const bytes = this.sharedMemory ? readIntoSharedMemory(s.file) : fs.readFileSync(s.file);
      this.noteDisk('disk-read', start);
      return decodeMessage(unpackFrames(bytes));
    } catch (err) {
      throw new Error(`cannot read spilled data of ${key} back from ${s.file}: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      this.stats.diskMs += performance.now() - t;
    }
  }

  takeDiskActivity(): StartStop[] {
    const out = this.diskActivity;
    if (out.length > 0) this.diskActivity = [];
    return out;
  }

  private noteDisk(action: 'disk-write' | 'disk-read', start: number): void {
    if (this.diskActivity.length >= 1000) this.diskActivity.splice(0, 500);
    this.diskActivity.push({ action, start, stop: Date.now() });
  }

  /** Removes every spilled file and the directory (the store is not used afterwards). */
  clear(): void {
    for (const s of this.slow.values()) fs.rmSync(s.file, { force: true });
    if (this.dir !== undefined) fs.rmSync(this.dir, { recursive: true, force: true });
    this.slow.clear();
    this.slowBytes = 0;
    this.fast.clear();
    this.fastBytes = 0;
    this.pinned.clear();
    this.pinnedBytes = 0;
  }
}

/**
 * Makes the spill directory, one level only: it lives inside the worker's local directory, which
 * was made and checked when the worker started (local-directory.ts). Not
 * `mkdirSync(dir, { recursive: true })`: Node's recursive mkdir retries forever, freezing the
 * thread, when mkdir of a path fails with ENOENT although its parent exists (under /proc or /sys);
 * and a local directory removed under a running worker should be reported, not quietly made again.
 */
function makeSpillDirectory(dir: string): void {
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new LocalDirectoryError(dir, err);
    checkIsDirectory(dir);
  }
}

/** After EEXIST: fine if `dir` is a directory (or a link to one). */
function checkIsDirectory(dir: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir); // a dangling link: ENOENT
  } catch (err) {
    throw new LocalDirectoryError(dir, err);
  }
  if (!stat.isDirectory()) throw new LocalDirectoryError(dir, notADirectoryError(dir));
}

/** What a failed write left behind, if anything; whatever is in the way stays (it is not ours). */
function removePartialFile(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // Never created (ENOENT), or not a file.
  }
}

function writeAll(file: string, pieces: Uint8Array[]): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const piece of pieces) {
      let offset = 0;
      while (offset < piece.byteLength) offset += fs.writeSync(fd, piece, offset, piece.byteLength - offset);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** At most one warning about failed spill writes per this many ms. */
const WRITE_WARNING_INTERVAL_MS = 60_000;

/** Small files are not worth shared memory (each SharedArrayBuffer is its own mapping). */
const SHARED_READ_MIN_BYTES = 64 * 1024;

function readIntoSharedMemory(file: string): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size < SHARED_READ_MIN_BYTES) return fs.readFileSync(fd);
    const bytes = new Uint8Array(new SharedArrayBuffer(size));
    let offset = 0;
    while (offset < size) {
      const n = fs.readSync(fd, bytes, offset, size - offset, offset);
      if (n === 0) throw new Error(`file ended after ${offset} of ${size} bytes`);
      offset += n;
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}
