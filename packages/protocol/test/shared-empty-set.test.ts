import { ownSet, sharedEmptySet } from '../src/index';

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
