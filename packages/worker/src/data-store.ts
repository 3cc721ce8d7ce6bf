// Where a worker keeps the data of keys in memory. A small interface so that a spilling store
// (memory + disk, LRU) can replace the plain in-memory one without touching the state machine.

import type { StartStop } from '@dd/protocol';
import { sizeof } from './sizeof';

export interface DataStore {
  has(key: string): boolean;
  /** The value of `key`; undefined when absent (a stored value may itself be undefined: use has). */
  get(key: string): unknown;
  /** Stores `value` and returns the bytes accounted for it (`nbytes` if given, else sizeof). */
  set(key: string, value: unknown, nbytes?: number): number;
  delete(key: string): boolean;
  /** Bytes accounted for `key`, or undefined when absent. */
  nbytes(key: string): number | undefined;
  keys(): IterableIterator<string>;
  readonly size: number;
  /** Sum of nbytes of every key held in memory. */
  readonly memoryBytes: number;
  /** Sum of nbytes of every key spilled to disk (0 for a memory-only store). */
  readonly spilledBytes: number;
  /**
   * Disk writes and reads (spilling, reading back) since the last call, for the task stream.
   * A store that never touches the disk leaves it out.
   */
  takeDiskActivity?(): StartStop[];
}

export class MemoryStore implements DataStore {
  private readonly values = new Map<string, unknown>();
  private readonly sizes = new Map<string, number>();
  private total = 0;

  has(key: string): boolean {
    return this.values.has(key);
  }

  get(key: string): unknown {
    return this.values.get(key);
  }

  set(key: string, value: unknown, nbytes?: number): number {
    const n = nbytes ?? sizeof(value);
    const old = this.sizes.get(key);
    if (old !== undefined) this.total -= old;
    this.values.set(key, value);
    this.sizes.set(key, n);
    this.total += n;
    return n;
  }

  delete(key: string): boolean {
    const old = this.sizes.get(key);
    if (old === undefined) return false;
    this.total -= old;
    this.values.delete(key);
    this.sizes.delete(key);
    return true;
  }

  nbytes(key: string): number | undefined {
    return this.sizes.get(key);
  }

  keys(): IterableIterator<string> {
    return this.values.keys();
  }

  get size(): number {
    return this.values.size;
  }

  get memoryBytes(): number {
    return this.total;
  }

  get spilledBytes(): number {
    return 0;
  }
}
