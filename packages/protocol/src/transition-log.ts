// A ring buffer for the state machines' transition logs (shared by @dd/scheduler and @dd/worker,
// which both depend on this package; nothing here is part of the wire format).

import type { Key, StimulusId } from './messages';

/**
 * The transition log of a state machine (the scheduler's and the worker's, behind `story()`):
 * the last `capacity` entries in a ring of columns. An entry per transition used to be a
 * 6-element array kept for 25 000-100 000 more transitions: each survived the young generation
 * and was copied into the old one, a GC cost on every task. Recommendations are given as a flat
 * [key, state, ...] list (null or empty when none); building a `{key: state}` object per
 * transition, each with a fresh property name, was ~20% of WorkerState's time plus much of its
 * GC. The first two recommendations are copied into columns of their own and only a longer list
 * is kept (as an exact copy): keeping each transition's list, most of them one or two pairs in a
 * growable array, was most of what the scheduler's transitions allocated in a 10 000-task map
 * (~6 MB, kept by the log past the young collections). forEach builds the lists again.
 */
export class TransitionLog {
  /** Columns in chunks allocated as the log fills: growing ten arrays by copying cost as much as the entries. */
  private readonly chunks: LogChunk[] = [];
  /** Entries stored (at most capacity). */
  private count = 0;
  /** Where the next entry goes; once the ring is full, also the oldest entry. */
  private next = 0;

  constructor(private readonly capacity: number) {}

  /** `recs` is read here and not kept: the caller may reuse it. */
  push(key: Key, start: string, finish: string, recs: readonly string[] | null, stimulusId: StimulusId, time: number): void {
    const i = this.next;
    // Compared with the length rather than read past the end: an out-of-bounds read (once per
    // new chunk) deoptimized every transition function that inlines push, which V8 then compiled
    // again (--trace-deopt in a 10 000-task map: the scheduler's transition and logTransition,
    // and each worker's transition).
    const ci = i >> CHUNK_BITS;
    const c = ci < this.chunks.length ? this.chunks[ci]! : this.addChunk(i);
    const j = i & CHUNK_MASK;
    c.keys[j] = key;
    c.starts[j] = start;
    c.finishes[j] = finish;
    const n = recs === null ? 0 : recs.length;
    if (n > 4) {
      c.longRecs[j] = recs!.slice();
      c.rec0States[j] = '';
    } else {
      c.longRecs[j] = null;
      c.rec0Keys[j] = n >= 2 ? recs![0]! : '';
      c.rec0States[j] = n >= 2 ? recs![1]! : '';
      c.rec1Keys[j] = n >= 4 ? recs![2]! : '';
      c.rec1States[j] = n >= 4 ? recs![3]! : '';
    }
    c.stimuli[j] = stimulusId;
    c.times[j] = time;
    this.next = i + 1 === this.capacity ? 0 : i + 1;
    if (this.count < this.capacity) this.count++;
  }

  /** Entries oldest first: (key, start, finish, flat recommendations or null, stimulusId, time). */
  forEach(visit: (key: Key, start: string, finish: string, recs: string[] | null, stimulusId: StimulusId, time: number) => void): void {
    const oldest = this.count < this.capacity ? 0 : this.next;
    for (let k = 0; k < this.count; k++) {
      const i = (oldest + k) % this.capacity;
      const c = this.chunks[i >> CHUNK_BITS]!;
      const j = i & CHUNK_MASK;
      let recs = c.longRecs[j] ?? null;
      if (recs === null && c.rec0States[j] !== '') {
        recs = [c.rec0Keys[j]!, c.rec0States[j]!];
        if (c.rec1States[j] !== '') recs.push(c.rec1Keys[j]!, c.rec1States[j]!);
      }
      visit(c.keys[j]!, c.starts[j]!, c.finishes[j]!, recs, c.stimuli[j]!, c.times[j]!);
    }
  }

  private addChunk(i: number): LogChunk {
    const first = i & ~CHUNK_MASK;
    const chunk = new LogChunk(Math.min(CHUNK_SIZE, this.capacity - first));
    this.chunks[i >> CHUNK_BITS] = chunk;
    return chunk;
  }
}

const CHUNK_BITS = 12;
const CHUNK_SIZE = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_SIZE - 1;

/** One chunk of the log's columns. Recommendations: up to two pairs inline ('' state: none), a longer list whole. */
class LogChunk {
  readonly keys: Key[];
  readonly starts: string[];
  readonly finishes: string[];
  readonly rec0Keys: string[];
  readonly rec0States: string[];
  readonly rec1Keys: string[];
  readonly rec1States: string[];
  readonly longRecs: Array<string[] | null>;
  readonly stimuli: StimulusId[];
  readonly times: Float64Array;

  constructor(size: number) {
    this.keys = new Array<Key>(size);
    this.starts = new Array<string>(size);
    this.finishes = new Array<string>(size);
    this.rec0Keys = new Array<string>(size);
    this.rec0States = new Array<string>(size);
    this.rec1Keys = new Array<string>(size);
    this.rec1States = new Array<string>(size);
    this.longRecs = new Array<string[] | null>(size);
    this.stimuli = new Array<StimulusId>(size);
    this.times = new Float64Array(size);
  }
}
