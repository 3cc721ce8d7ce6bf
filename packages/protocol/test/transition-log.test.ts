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
