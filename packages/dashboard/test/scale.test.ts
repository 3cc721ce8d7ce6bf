// The dashboard stays cheap with 100,000 tasks known: snapshots, /metrics and /eventstream
// updates are aggregated from task groups and workers, never a walk over every task.

import { SchedulerState } from '@dd/scheduler';
import type { TaskDefinition } from '@dd/protocol';
import { DashboardServer, type ObserverView, type SchedulerView } from '../src/index';

jest.setTimeout(60_000);

test('100,000 tasks: snapshot, /metrics and /json/counts.json stay fast and small', async () => {
  const state = new SchedulerState({});
  const observers = new Set<ObserverView>();
  const view: SchedulerView = {
    id: 'scale',
    address: 'inproc://scale',
    started: Date.now(),
    state,
    addObserver: (o) => {
      observers.add(o);
      return () => observers.delete(o);
    },
  };
  const spec = { language: 'js', data: new Uint8Array([1]) };
  for (let w = 0; w < 8; w++) {
    state.handleStimulus({ kind: 'add-worker', address: `tcp://127.0.0.1:${20000 + w}`, name: `w${w}`, host: `127.0.0.1`, nthreads: 4, memoryLimit: 1e9, resources: {}, stimulusId: `aw-${w}` });
  }
  const prefixes = ['load', 'parse', 'reduce', 'write'];
  const tasks: TaskDefinition[] = [];
  for (let i = 0; i < 100_000; i++) tasks.push({ key: `${prefixes[i % 4]}-${i.toString(16).padStart(12, '0')}`, spec, dependencies: [] });
  state.handleStimulus({ kind: 'add-client', client: 'c', stimulusId: 'ac' });
  state.handleStimulus({ kind: 'update-graph', client: 'c', tasks, keys: tasks.map((t) => t.key), stimulusId: 'ug' });
  expect(state.tasks.size).toBe(100_000);

  const d = await DashboardServer.start(view, { port: 0 });
  try {
    // Warm up, then time.
    d.collector.snapshot();
    let t = performance.now();
    for (let i = 0; i < 20; i++) d.collector.snapshot();
    const snapMs = (performance.now() - t) / 20;
    const snap = d.collector.snapshot();
    expect(snap.counts.tasks).toBe(100_000);
    expect(snap.counts.states['processing']).toBe(100_000);
    expect(snap.prefixes.map((p) => p.name).sort()).toEqual([...prefixes].sort());
    expect(JSON.stringify(snap).length).toBeLessThan(20_000);
    // Only a gross regression fails this (the figure itself is for benchmarks): a snapshot
    // that serialised all 100k tasks would take far longer.
    expect(snapMs).toBeLessThan(500);

    t = performance.now();
    const res = await fetch(`${d.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toMatch(/dd_scheduler_tasks\{state="processing"\} 100000/);
    const counts = (await (await fetch(`${d.url}/json/counts.json`, { signal: AbortSignal.timeout(10_000) })).json()) as Record<string, number>;
    expect(counts['tasks']).toBe(100_000);
    const graph = (await (await fetch(`${d.url}/json/graph.json`, { signal: AbortSignal.timeout(10_000) })).json()) as { nodes: unknown[]; truncated: boolean };
    expect(graph.nodes.length).toBe(2000);
    expect(graph.truncated).toBe(true);
    expect(performance.now() - t).toBeLessThan(5_000);
  } finally {
    await d.close();
  }
  expect(observers.size).toBe(0);
});
