// Cluster-management extensions against a fake host: no sockets.

import type { SchedulerEvent } from '../src/events';
import type { SchedulerObserver } from '../src/observers';
import { TaskStreamExtension } from '../src/extensions/cluster';

function fakeHost() {
  const observers: SchedulerObserver[] = [];
  return {
    observers,
    feed: () => undefined,
    sid: (p: string) => `${p}-1`,
    addObserver: (o: SchedulerObserver) => {
      observers.push(o);
      return () => undefined;
    },
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    now: () => 0,
  };
}

function finished(key: string, start: number, stop: number): SchedulerEvent {
  return { kind: 'task-finished', worker: 'w1', key, nbytes: 8, type: 'number', startstops: [{ action: 'compute', start, stop }], stimulusId: 's' };
}

describe('task stream', () => {
  test('records finished and erred tasks in a bounded ring, oldest first; filters by time and count', () => {
    const host = fakeHost();
    const ext = new TaskStreamExtension(host, 3);
    host.observers[0]!.onStimuli!([
      finished('a', 10, 20),
      { kind: 'task-finished', worker: 'w1', key: 'no-times', nbytes: 1, stimulusId: 's' },
      finished('b', 30, 40),
      { kind: 'task-erred', worker: 'w2', key: 'c', exception: { name: 'Error', message: 'x' }, startstops: [{ action: 'compute', start: 50, stop: 60 }], stimulusId: 's' },
    ]);
    const get = (m: Record<string, unknown>) => ext.handlers['get-task-stream'](m);
    expect(get({}).map((r) => [r.key, r.status])).toEqual([['a', 'OK'], ['b', 'OK'], ['c', 'error']]);
    expect(get({})[0]).toEqual({ key: 'a', worker: 'w1', status: 'OK', startstops: [{ action: 'compute', start: 10, stop: 20 }], nbytes: 8, type: 'number' });
    host.observers[0]!.onStimuli!([finished('d', 70, 80)]);
    expect(get({}).map((r) => r.key)).toEqual(['b', 'c', 'd']);
    expect(get({ start: 45, stop: 75 }).map((r) => r.key)).toEqual(['c', 'd']);
    expect(get({ count: 1 }).map((r) => r.key)).toEqual(['d']);
    expect(get({ count: 0 })).toEqual([]);
    expect(() => get({ start: 'soon' })).toThrow(/must be a number/);
  });
});
