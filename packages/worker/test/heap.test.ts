import { Heap, comparePriority } from '../src/heap';

// A small deterministic generator: the same sequences on every run.
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('Heap', () => {
  test('pops in order for ascending, descending, equal and random pushes, with pushes between pops', () => {
    const rand = lcg(7);
    const patterns: Array<(i: number) => number> = [(i) => i, (i) => -i, () => 3, () => Math.floor(rand() * 50)];
    for (const value of patterns) {
      for (const n of [0, 1, 2, 3, 7, 64, 1000]) {
        const heap = new Heap<number>((a, b) => a < b);
        const reference: number[] = [];
        const popped: number[] = [];
        for (let i = 0; i < n; i++) {
          const v = value(i);
          heap.push(v);
          reference.push(v);
          if (i % 5 === 4) popped.push(heap.pop()!); // interleaved, as the ready queue is used
        }
        while (heap.size > 0) popped.push(heap.pop()!);
        expect(heap.pop()).toBeUndefined();
        expect(popped).toHaveLength(n);
        expect([...popped].sort((a, b) => a - b)).toEqual([...reference].sort((a, b) => a - b));
        // Between interleaved pushes the output is sorted within each run of pops.
        const tail = popped.slice(popped.length - (n - Math.floor(n / 5)));
        expect(tail).toEqual([...tail].sort((a, b) => a - b));
      }
    }
  });

  test('every pop returns the least entry present (priority arrays, ties broken by arrival)', () => {
    interface Entry { priority: number[]; arrival: number }
    const less = (a: Entry, b: Entry) => {
      const c = comparePriority(a.priority, b.priority);
      return c !== 0 ? c < 0 : a.arrival > b.arrival;
    };
    const rand = lcg(42);
    const heap = new Heap<Entry>(less);
    const present: Entry[] = [];
    for (let step = 0; step < 3000; step++) {
      if (present.length === 0 || rand() < 0.6) {
        const e = { priority: [0, Math.floor(rand() * 3), Math.floor(rand() * 20)], arrival: step };
        heap.push(e);
        present.push(e);
      } else {
        const got = heap.pop()!;
        const least = present.reduce((m, e) => (less(e, m) ? e : m));
        expect(got).toBe(least);
        present.splice(present.indexOf(got), 1);
      }
      expect(heap.size).toBe(present.length);
    }
  });
});
