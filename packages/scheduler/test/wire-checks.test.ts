// findDependencyCycle: the scheduler's guard against update-graphs whose tasks wait on each other.

import type { TaskDefinition } from '@dd/protocol';
import { findDependencyCycle } from '../src/wire-checks';

const spec = { language: 'js', data: new Uint8Array(0) };
const task = (key: string, ...dependencies: string[]): TaskDefinition => ({ key, spec, dependencies });

describe('findDependencyCycle', () => {
  test('graphs without a cycle pass: independent tasks, a diamond, inputs the scheduler already has', () => {
    expect(findDependencyCycle([task('a'), task('b')])).toBeUndefined();
    expect(findDependencyCycle([task('a'), task('b', 'a'), task('c', 'a'), task('d', 'b', 'c')])).toBeUndefined();
    expect(findDependencyCycle([task('x', 'known-elsewhere'), task('y', 'x', 'known-elsewhere')])).toBeUndefined();
  });

  test('a cycle is reported as its keys in order, the first repeated', () => {
    expect(findDependencyCycle([task('a', 'a')])).toEqual(['a', 'a']);
    expect(findDependencyCycle([task('root'), task('a', 'root', 'b'), task('b', 'c'), task('c', 'a')])).toEqual(['a', 'b', 'c', 'a']);
  });

  test('a chain deeper than the call stack is walked without overflowing it', () => {
    const n = 200_000;
    const chain = Array.from({ length: n }, (_, i) => (i === 0 ? task('t0') : task(`t${i}`, `t${i - 1}`)));
    expect(findDependencyCycle(chain.reverse())).toBeUndefined();
    chain.push(task('t0', `t${n - 1}`)); // the same key again, now closing the loop
    expect(findDependencyCycle(chain)?.length).toBe(n + 1);
  });
});
