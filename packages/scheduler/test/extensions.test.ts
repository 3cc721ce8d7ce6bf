// Scheduler extensions (datasets, metadata, events) against a fake host: no sockets.

import type { SchedulerEvent } from '../src/events';
import type { SchedulerObserver } from '../src/observers';
import { DatasetsExtension, EventsExtension, MetadataExtension, type ExtensionHost } from '../src/extensions';

function fakeHost(): ExtensionHost & { fed: SchedulerEvent[]; observers: SchedulerObserver[]; time: number } {
  let n = 0;
  const host = {
    fed: [] as SchedulerEvent[],
    observers: [] as SchedulerObserver[],
    time: 1_000_000,
    feed: (...events: SchedulerEvent[]) => void host.fed.push(...events),
    sid: (p: string) => `${p}-${++n}`,
    addObserver: (o: SchedulerObserver) => {
      host.observers.push(o);
      return () => {};
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} } as unknown as ExtensionHost['logger'],
    now: () => host.time,
  };
  return host;
}

describe('DatasetsExtension', () => {
  test('publish pins the keys under its holder; unpublish and override release the holder', () => {
    const host = fakeHost();
    const ext = new DatasetsExtension(host);
    ext.handlers['publish-dataset']({ name: 'd', keys: ['k1'], data: { __ddKey__: 'k1' }, holder: 'published-d-1' });
    expect(host.fed).toEqual([{ kind: 'client-desires-keys', client: 'published-d-1', keys: ['k1'], stimulusId: expect.any(String) }]);
    expect(ext.handlers['get-dataset']({ name: 'd' })).toEqual({ keys: ['k1'], data: { __ddKey__: 'k1' } });
    expect(() => ext.handlers['publish-dataset']({ name: 'd', keys: ['k2'], holder: 'published-d-2' })).toThrow(/already published/);
    // The refused publication's own pin is released.
    expect(host.fed.at(-1)).toMatchObject({ kind: 'remove-client', client: 'published-d-2' });
    ext.handlers['publish-dataset']({ name: 'd', keys: ['k3'], holder: 'published-d-3', override: true });
    expect(host.fed.slice(-2)).toMatchObject([
      { kind: 'remove-client', client: 'published-d-1' },
      { kind: 'client-desires-keys', client: 'published-d-3', keys: ['k3'] },
    ]);
    expect(ext.handlers['list-datasets']()).toEqual(['d']);
    ext.handlers['unpublish-dataset']({ name: 'd' });
    expect(host.fed.at(-1)).toMatchObject({ kind: 'remove-client', client: 'published-d-3' });
    expect(() => ext.handlers['get-dataset']({ name: 'd' })).toThrow(/not published/);
    expect(() => ext.handlers['publish-dataset']({ name: 'e', keys: [], holder: 'someone' })).toThrow(/holder must start with/);
  });

  test('a pin that arrives after its holder was released is released again', async () => {
    const host = fakeHost();
    const ext = new DatasetsExtension(host);
    ext.handlers['publish-dataset']({ name: 'd', keys: [], holder: 'published-d-1' });
    ext.handlers['unpublish-dataset']({ name: 'd' });
    host.fed.length = 0;
    host.observers[0]!.onStimuli!([{ kind: 'client-desires-keys', client: 'published-d-1', keys: ['late'], stimulusId: 's' }]);
    await Promise.resolve();
    expect(host.fed).toMatchObject([{ kind: 'remove-client', client: 'published-d-1' }]);
  });
});

describe('MetadataExtension', () => {
  test('paths, defaults, prototype-free nodes', () => {
    const ext = new MetadataExtension();
    ext.handlers['set-metadata']({ keys: ['__proto__', 'x'], value: 1 });
    expect(ext.handlers['get-metadata']({ keys: ['__proto__', 'x'] })).toBe(1);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    expect(() => ext.handlers['get-metadata']({ keys: ['nope'] })).toThrow(/no metadata/);
    expect(ext.handlers['get-metadata']({ keys: ['nope'], default: null })).toBeNull();
    ext.handlers['set-metadata']({ keys: [], value: { a: 1 } });
    expect(ext.handlers['get-metadata']({ keys: ['a'] })).toBe(1);
  });
});

describe('EventsExtension', () => {
  test('topics, bounds, worker events', () => {
    const host = fakeHost();
    const ext = new EventsExtension(host, 3);
    for (let i = 0; i < 5; i++) ext.clientStreamHandlers['log-event']({ topic: ['t', 'u'], msg: i });
    expect(ext.handlers['get-events']({ topic: 't' })).toEqual([2, 3, 4].map((i) => [1000, i]));
    host.observers[0]!.onStimuli!([
      { kind: 'add-worker', address: 'tcp://w', name: 'w', host: 'h', nthreads: 1, memoryLimit: 0, resources: {}, stimulusId: 's' } as SchedulerEvent,
    ]);
    expect(ext.handlers['get-events']({ topic: 'tcp://w' })).toEqual([[1000, { action: 'add-worker', worker: 'tcp://w' }]]);
    expect(() => ext.handlers['log-event']({ topic: 3, msg: 1 })).toThrow(/topic/);
  });
});
