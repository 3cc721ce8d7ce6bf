// The bookkeeping behind the Server's throttled warnings, with an injected clock (the Server
// side, with real connections, is in bad-input.test.ts).

import { WarningThrottle } from '../src/warning-throttle';

jest.setTimeout(5000);

function throttle(options: { windowMs?: number; maxHosts?: number } = {}): { t: WarningThrottle; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { t: new WarningThrottle({ ...options, now: () => clock.now }), clock };
}

test('the first warning from a host is logged, further ones within the window are counted', () => {
  const { t, clock } = throttle({ windowMs: 60_000 });
  expect(t.decide('10.0.0.1')).toEqual({ log: true, suppressed: 0, sinceMs: 0 });
  clock.now += 1000;
  expect(t.decide('10.0.0.1')).toEqual({ log: false });
  clock.now += 58_999;
  expect(t.decide('10.0.0.1')).toEqual({ log: false });
  // Another host has its own window.
  expect(t.decide('10.0.0.2')).toEqual({ log: true, suppressed: 0, sinceMs: 0 });
});

test('the first warning after the window reports how many were dropped, and starts a new window', () => {
  const { t, clock } = throttle({ windowMs: 60_000 });
  t.decide('h');
  for (let i = 0; i < 37; i++) {
    clock.now += 1000;
    t.decide('h');
  }
  clock.now = 1_000_000 + 90_000;
  expect(t.decide('h')).toEqual({ log: true, suppressed: 37, sinceMs: 90_000 });
  clock.now += 1;
  expect(t.decide('h')).toEqual({ log: false });
  clock.now += 60_000;
  expect(t.decide('h')).toEqual({ log: true, suppressed: 1, sinceMs: 60_001 });
});

test('a clock that goes backwards ends the window instead of silencing the host', () => {
  const { t, clock } = throttle({ windowMs: 60_000 });
  t.decide('h');
  clock.now -= 3_600_000;
  expect(t.decide('h')).toMatchObject({ log: true });
});

test('memory is bounded: beyond maxHosts the host warned about longest ago is forgotten', () => {
  const { t, clock } = throttle({ windowMs: 60_000, maxHosts: 3 });
  for (let i = 0; i < 1000; i++) {
    clock.now += 1;
    t.decide(`10.0.${i >> 8}.${i & 255}`);
  }
  expect(t.size).toBe(3);
  // The last three are remembered (within their window), the first is not.
  expect(t.decide('10.0.3.231')).toEqual({ log: false });
  expect(t.decide('10.0.0.0')).toMatchObject({ log: true });
  expect(t.size).toBe(3);
});

test('a host logged again moves to the back: it is not the next one forgotten', () => {
  const { t, clock } = throttle({ windowMs: 10, maxHosts: 2 });
  t.decide('a');
  clock.now += 1;
  t.decide('b');
  clock.now += 20;
  t.decide('a'); // window over: logged again, now newer than b
  t.decide('c'); // forgets b, not a
  expect(t.decide('a')).toEqual({ log: false });
  expect(t.decide('b')).toMatchObject({ log: true, suppressed: 0 });
});
