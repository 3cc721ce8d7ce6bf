import { clearIfAny, ownSet, sharedEmptySet } from '../src/index';

test('the shared empty set refuses adds; ownSet gives a fresh set for it and the same set otherwise', () => {
  const a = sharedEmptySet<number>();
  expect(sharedEmptySet<string>()).toBe(a as unknown);
  expect(a.size).toBe(0);
  expect(() => a.add(1)).toThrow(/shared empty set/);
  expect(a.size).toBe(0);
  const own = ownSet(a);
  expect(own).not.toBe(a);
  own.add(1);
  expect(ownSet(own)).toBe(own);
  expect(a.size).toBe(0);
});

test('clearIfAny empties a Set or a Map that holds something and leaves an empty one alone', () => {
  const s = new Set([1, 2]);
  const m = new Map([['a', 1]]);
  clearIfAny(s);
  clearIfAny(m);
  expect(s.size).toBe(0);
  expect(m.size).toBe(0);
  // The shared empty set refuses add() but may be "cleared": nothing happens to it.
  const shared = sharedEmptySet<number>();
  clearIfAny(shared);
  expect(shared.size).toBe(0);
});
