// A ring buffer for the state machines' transition logs (shared by @dd/scheduler and @dd/worker,
// which both depend on this package; nothing here is part of the wire format).

import type { Key, StimulusId } from './messages';

/**
 * The transition log of a state machine (the scheduler's and the worker's, behind `story()`):
 * the last `capacity` entries in a ring of columns. An entry per transition used to be a
 * 6-element array kept for 25 000-100 000 more transitions: each survived the young generation
 * and was copied into the old one, a GC cost on every task. Recommendations are kept as a flat
 * [key, state, ...] list (null or empty when none): building a `{key: state}` object per
 * transition, each with a fresh property name, was ~20% of WorkerState's time plus much of its
 * GC; story() builds them for the entries it returns.
 */
export class TransitionLog {
  private readonly keys: Key[] = [];
  private readonly starts: string[] = [];
  private readonly finishes: string[] = [];
  private readonly recs: Array<string[] | null> = [];
  private readonly stimuli: StimulusId[] = [];
  private readonly times: number[] = [];
  /** Where the next entry goes once the ring is full. */
  private next = 0;

  constructor(private readonly capacity: number) {}

  push(key: Key, start: string, finish: string, recs: string[] | null, stimulusId: StimulusId, time: number): void {
    if (this.keys.length < this.capacity) {
      this.keys.push(key);
      this.starts.push(start);
      this.finishes.push(finish);
      this.recs.push(recs);
      this.stimuli.push(stimulusId);
      this.times.push(time);
      return;
    }
    const i = this.next;
    this.keys[i] = key;
    this.starts[i] = start;
    this.finishes[i] = finish;
    this.recs[i] = recs;
    this.stimuli[i] = stimulusId;
    this.times[i] = time;
    this.next = i + 1 === this.capacity ? 0 : i + 1;
  }

  /** Entries oldest first: (key, start, finish, flat recommendations, stimulusId, time). */
  forEach(visit: (key: Key, start: string, finish: string, recs: string[] | null, stimulusId: StimulusId, time: number) => void): void {
    const n = this.keys.length;
    for (let j = 0; j < n; j++) {
      const i = n < this.capacity ? j : (this.next + j) % n;
      visit(this.keys[i]!, this.starts[i]!, this.finishes[i]!, this.recs[i] ?? null, this.stimuli[i]!, this.times[i]!);
    }
  }
}
