// Graph ordering (src/order.ts), tested directly: valid topological order, deep branches
// first, and few results held at once, compared with breadth-first order, when executed one
// task at a time.

import { GraphCycleError, orderGraph } from '../src/order';

type Deps = Map<string, string[]>;

/** Ranks by breadth-first order (Kahn's algorithm by levels): the order to compare against. */
function breadthFirst(deps: Deps): Map<string, number> {
  const level = new Map<string, number>();
  const depth = (k: string): number => {
    const known = level.get(k);
    if (known !== undefined) return known;
    const ds = (deps.get(k) ?? []).filter((d) => deps.has(d));
    const v = ds.length === 0 ? 0 : 1 + Math.max(...ds.map(depth));
    level.set(k, v);
    return v;
  };
  const keys = [...deps.keys()];
  keys.sort((a, b) => depth(a) - depth(b) || keys.indexOf(a) - keys.indexOf(b));
  return new Map(keys.map((k, i) => [k, i]));
}

/**
 * Runs the tasks one at a time in rank order and returns the largest number of results held
 * at once. A result is held until every dependent has run; outputs (no dependents) are held
 * to the end, as the client wants them.
 */
function maxHeld(deps: Deps, rank: Map<string, number>): number {
  const dependents = new Map<string, number>();
  for (const ds of deps.values()) for (const d of new Set(ds)) if (deps.has(d)) dependents.set(d, (dependents.get(d) ?? 0) + 1);
  const keys = [...deps.keys()].sort((a, b) => rank.get(a)! - rank.get(b)!);
  const done = new Set<string>();
  const held = new Set<string>();
  let max = 0;
  for (const k of keys) {
    for (const d of deps.get(k)!) if (deps.has(d) && !done.has(d)) throw new Error(`${k} ranked before its dependency ${d}`);
    done.add(k);
    held.add(k);
    max = Math.max(max, held.size);
    for (const d of new Set(deps.get(k)!)) {
      if (!deps.has(d)) continue;
      const left = dependents.get(d)! - 1;
      dependents.set(d, left);
      if (left === 0) held.delete(d);
    }
  }
  return max;
}

/** load(i) -> inc(i), then a binary tree of adds over the incs: 3n - 1 tasks. */
function treeReduction(n: number): Deps {
  const deps: Deps = new Map();
  let level: string[] = [];
  for (let i = 0; i < n; i++) {
    deps.set(`load-${i}`, []);
    deps.set(`inc-${i}`, [`load-${i}`]);
    level.push(`inc-${i}`);
  }
  let round = 0;
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const k = `add-${round}-${i / 2}`;
      deps.set(k, level.slice(i, i + 2));
      next.push(k);
    }
    level = next;
    round++;
  }
  return deps;
}

function isTopological(deps: Deps, rank: Map<string, number>): boolean {
  for (const [k, ds] of deps) for (const d of ds) if (deps.has(d) && rank.get(d)! >= rank.get(k)!) return false;
  return true;
}

describe('orderGraph', () => {
  test('a wide tree reduction holds O(log n) results, breadth-first holds O(n)', () => {
    const deps = treeReduction(1024);
    const rank = orderGraph(deps);
    expect(rank.size).toBe(deps.size);
    expect(new Set(rank.values()).size).toBe(deps.size);
    expect(isTopological(deps, rank)).toBe(true);
    const dfs = maxHeld(deps, rank);
    const bfs = maxHeld(deps, breadthFirst(deps));
    expect(bfs).toBeGreaterThanOrEqual(1024);
    // One partial sum per level of the tree plus the task at hand.
    expect(dfs).toBeLessThanOrEqual(2 * Math.log2(1024) + 2);
  });

  test('a reduction where every input fans out to a chain finishes each chain first', () => {
    // root -> 100 chains of 5 -> one sum: the chains are independent branches.
    const deps: Deps = new Map([['root', []]]);
    const ends: string[] = [];
    for (let c = 0; c < 100; c++) {
      let prev = 'root';
      for (let j = 0; j < 5; j++) {
        const k = `c${c}-${j}`;
        deps.set(k, [prev]);
        prev = k;
      }
      ends.push(prev);
    }
    deps.set('sum', ends);
    const rank = orderGraph(deps);
    expect(isTopological(deps, rank)).toBe(true);
    // The sum needs all chain ends, so 100 are held at the end in any order.
    expect(maxHeld(deps, rank)).toBeLessThanOrEqual(102);
    // Chain 0 finishes before chain 1 starts.
    expect(rank.get('c0-4')!).toBeLessThan(rank.get('c1-0')!);
  });

  test('the deeper branch runs first', () => {
    const deps: Deps = new Map([
      ['shallow', []],
      ['d0', []],
      ['d1', ['d0']],
      ['d2', ['d1']],
      ['out', ['shallow', 'd2']],
    ]);
    const rank = orderGraph(deps);
    expect(rank.get('d2')!).toBeLessThan(rank.get('shallow')!);
    expect(rank.get('out')).toBe(4);
  });

  test('a dependent runs as soon as its inputs are done (releasing them early)', () => {
    // Two outputs over overlapping windows: x_i, y_i = f(x_i, x_{i+1}).
    const deps: Deps = new Map();
    for (let i = 0; i <= 50; i++) deps.set(`x${i}`, []);
    for (let i = 0; i < 50; i++) deps.set(`y${i}`, [`x${i}`, `x${i + 1}`]);
    const rank = orderGraph(deps);
    expect(isTopological(deps, rank)).toBe(true);
    // Outputs are held to the end (50); only a couple of x's at a time beyond that.
    expect(maxHeld(deps, rank)).toBeLessThanOrEqual(50 + 3);
  });

  test('keys outside the graph (Futures) are ignored; duplicates counted once', () => {
    const deps: Deps = new Map([
      ['a', ['future-1', 'future-1']],
      ['b', ['a', 'a', 'future-2']],
    ]);
    expect([...orderGraph(deps)]).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
  });

  test('deterministic and topological on random DAGs', () => {
    let seed = 42;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 20; trial++) {
      const n = 1 + Math.floor(rand() * 200);
      const deps: Deps = new Map();
      for (let i = 0; i < n; i++) {
        const ds: string[] = [];
        for (let j = 0; j < i; j++) if (rand() < 3 / (i + 1)) ds.push(`t${j}`);
        deps.set(`t${i}`, ds);
      }
      const r1 = orderGraph(deps);
      expect(r1.size).toBe(n);
      expect(isTopological(deps, r1)).toBe(true);
      expect([...orderGraph(deps)]).toEqual([...r1]);
    }
  });

  test('a cycle is reported with its keys', () => {
    const deps: Deps = new Map([
      ['a', []],
      ['b', ['a', 'd']],
      ['c', ['b']],
      ['d', ['c']],
      ['e', ['d']],
    ]);
    let err: unknown;
    try {
      orderGraph(deps);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GraphCycleError);
    const cycle = (err as GraphCycleError).cycle;
    expect(cycle[0]).toBe(cycle[cycle.length - 1]);
    expect(new Set(cycle)).toEqual(new Set(['b', 'c', 'd']));
    expect((err as Error).message).toMatch(/cycle: [bcd] -> [bcd] -> [bcd] -> [bcd]/);
    expect(() => orderGraph(new Map([['self', ['self']]]))).toThrow('self -> self');
  });

  test('10 001 tasks order quickly', () => {
    const deps: Deps = new Map();
    const xs: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      deps.set(`["x",${i}]`, []);
      xs.push(`["x",${i}]`);
    }
    deps.set('total', xs);
    const t = performance.now();
    const rank = orderGraph(deps);
    expect(performance.now() - t).toBeLessThan(500);
    expect(rank.get('total')).toBe(10_000);
    expect(rank.get('["x",0]')).toBe(0);
  });
});
