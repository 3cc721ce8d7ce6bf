import { TransitionLog } from '../src/index';

const entries = (log: TransitionLog) => {
  const out: unknown[] = [];
  log.forEach((key, start, finish, recs, stimulusId, time) => out.push([key, start, finish, recs, stimulusId, time]));
  return out;
};

test('TransitionLog keeps the last `capacity` entries, oldest first', () => {
  const log = new TransitionLog(3);
  expect(entries(log)).toEqual([]);
  log.push('a', 'released', 'waiting', ['b', 'waiting'], 's1', 1);
  log.push('b', 'released', 'waiting', null, 's1', 2);
  expect(entries(log)).toEqual([
    ['a', 'released', 'waiting', ['b', 'waiting'], 's1', 1],
    ['b', 'released', 'waiting', null, 's1', 2],
  ]);
  for (let i = 3; i <= 7; i++) log.push(`k${i}`, 'x', 'y', null, `s${i}`, i);
  expect(entries(log).map((e) => (e as unknown[])[5])).toEqual([5, 6, 7]);
  log.push('last', 'x', 'y', [], 's8', 8);
  expect(entries(log).map((e) => (e as unknown[])[0])).toEqual(['k6', 'k7', 'last']);
});

test('TransitionLog keeps recommendations of any length, copied: the caller may reuse its list', () => {
  const log = new TransitionLog(10);
  const scratch = ['b', 'waiting'];
  log.push('a', 'released', 'waiting', scratch, 's1', 1);
  scratch.length = 0;
  scratch.push('c', 'memory', 'd', 'released');
  log.push('b', 'waiting', 'processing', scratch, 's2', 2);
  scratch.push('e', 'forgotten');
  log.push('c', 'processing', 'memory', scratch, 's3', 3);
  scratch.length = 0;
  log.push('d', 'memory', 'released', scratch, 's4', 4);
  expect(entries(log).map((e) => (e as unknown[])[3])).toEqual([
    ['b', 'waiting'],
    ['c', 'memory', 'd', 'released'],
    ['c', 'memory', 'd', 'released', 'e', 'forgotten'],
    null,
  ]);
});

test('TransitionLog wraps correctly when its capacity spans several chunks', () => {
  const log = new TransitionLog(5000);
  for (let i = 0; i < 12_345; i++) log.push(`k${i}`, 'a', 'b', i % 3 === 0 ? [`r${i}`, 'waiting'] : null, `s${i}`, i);
  const got = entries(log) as Array<[string, string, string, string[] | null, string, number]>;
  expect(got).toHaveLength(5000);
  expect(got[0]![5]).toBe(12_345 - 5000);
  expect(got[4999]![5]).toBe(12_344);
  for (let k = 0; k < got.length; k++) {
    const i = 12_345 - 5000 + k;
    expect(got[k]).toEqual([`k${i}`, 'a', 'b', i % 3 === 0 ? [`r${i}`, 'waiting'] : null, `s${i}`, i]);
  }
});
