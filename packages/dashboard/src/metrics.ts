// /metrics in Prometheus text format, through prom-client (a registry of our own, not the global
// one): the scheduler's tasks by state, workers, memory, bytes transferred, tasks/s, event-loop
// lag, per-worker and per-prefix gauges, plus prom-client's standard process/nodejs metrics.
// Gauges are set from one aggregated snapshot per scrape (O(workers + task groups)).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Collector } from './collector';

export class SchedulerMetrics {
  readonly registry = new Registry();
  private readonly g: Record<string, Gauge<string>>;
  private readonly c: Record<string, Counter<string>>;
  private readonly last: Record<string, number> = {};

  constructor(private readonly collector: Collector) {
    const r = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: r });
    const counter = (name: string, help: string) => new Counter({ name, help, registers: r });
    this.g = {
      tasks: gauge('dd_scheduler_tasks', 'Tasks known to the scheduler, by state', ['state']),
      tasksKnown: gauge('dd_scheduler_tasks_known', 'Tasks known to the scheduler'),
      workers: gauge('dd_scheduler_workers', 'Workers connected'),
      clients: gauge('dd_scheduler_clients', 'Clients connected'),
      threads: gauge('dd_scheduler_threads', 'Worker threads in the cluster'),
      taskRate: gauge('dd_scheduler_tasks_per_second', 'Tasks finished per second over the last 5 s'),
      lag: gauge('dd_scheduler_event_loop_lag_seconds', 'Event-loop lag of the scheduler process over the last 5 s', ['stat']),
      memory: gauge('dd_scheduler_cluster_memory_bytes', 'Memory of the cluster: process memory of all workers (rss), managed bytes of task results, spilled bytes', ['kind']),
      memoryLimit: gauge('dd_scheduler_cluster_memory_limit_bytes', 'Sum of the workers\' memory limits'),
      prefix: gauge('dd_scheduler_prefix_tasks', 'Tasks known to the scheduler by task prefix and state', ['prefix', 'state']),
      wMemory: gauge('dd_worker_memory_bytes', 'Process memory (rss) of a worker, from its last heartbeat', ['worker']),
      wManaged: gauge('dd_worker_managed_bytes', 'Bytes of task results a worker holds', ['worker']),
      wLimit: gauge('dd_worker_memory_limit_bytes', 'Memory limit of a worker', ['worker']),
      wCpu: gauge('dd_worker_cpu_percent', 'CPU use of a worker process (100 = one core)', ['worker']),
      wProcessing: gauge('dd_worker_processing_tasks', 'Tasks the scheduler has assigned to a worker and not seen finish', ['worker']),
      wInFlight: gauge('dd_worker_bytes_in_flight', 'Bytes a worker is fetching from peers', ['worker']),
    };
    this.c = {
      finished: counter('dd_scheduler_tasks_finished_total', 'Tasks reported finished by workers since the dashboard started'),
      erred: counter('dd_scheduler_tasks_erred_total', 'Tasks reported erred by workers since the dashboard started'),
      transferBytes: counter('dd_scheduler_transfer_bytes_total', 'Bytes workers fetched from peers (as reported in add-keys)'),
      transitions: counter('dd_scheduler_transitions_total', 'Task state transitions of the scheduler'),
      stolen: counter('dd_scheduler_tasks_stolen_total', 'Queued tasks work stealing moved to an idle worker'),
    };
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async text(): Promise<string> {
    const s = this.collector.snapshot();
    const g = this.g;
    for (const [state, n] of Object.entries(s.counts.states)) g['tasks']!.set({ state }, n);
    g['tasksKnown']!.set(s.counts.tasks);
    g['workers']!.set(s.counts.workers);
    g['clients']!.set(s.counts.clients);
    g['threads']!.set(s.counts.threads);
    g['taskRate']!.set(s.totals.taskRate);
    for (const stat of ['mean', 'max', 'p99'] as const) g['lag']!.set({ stat }, s.totals.eventLoopLagMs[stat] / 1000);
    let rss = 0;
    let managed = 0;
    let spilled = 0;
    let limit = 0;
    for (const name of ['wMemory', 'wManaged', 'wLimit', 'wCpu', 'wProcessing', 'wInFlight']) g[name]!.reset();
    for (const w of s.workers) {
      rss += w.memory;
      managed += w.managed;
      spilled += w.spilled;
      limit += w.memoryLimit;
      const worker = w.address;
      g['wMemory']!.set({ worker }, w.memory);
      g['wManaged']!.set({ worker }, w.managed);
      g['wLimit']!.set({ worker }, w.memoryLimit);
      g['wCpu']!.set({ worker }, w.cpu);
      g['wProcessing']!.set({ worker }, w.processing);
      g['wInFlight']!.set({ worker }, w.bytesInFlight);
    }
    g['memory']!.set({ kind: 'process' }, rss);
    g['memory']!.set({ kind: 'managed' }, managed);
    g['memory']!.set({ kind: 'spilled' }, spilled);
    g['memoryLimit']!.set(limit);
    g['prefix']!.reset();
    for (const p of s.prefixes) {
      const prefix = p.name;
      g['prefix']!.set({ prefix, state: 'waiting' }, p.waiting + p.noWorker);
      g['prefix']!.set({ prefix, state: 'processing' }, p.processing);
      g['prefix']!.set({ prefix, state: 'memory' }, p.memory);
      g['prefix']!.set({ prefix, state: 'erred' }, p.erred);
      g['prefix']!.set({ prefix, state: 'released' }, p.released);
    }
    this.count('finished', s.totals.tasksFinished);
    this.count('erred', s.totals.tasksErred);
    this.count('transferBytes', s.totals.bytesTransferred);
    this.count('transitions', s.totals.transitions);
    this.count('stolen', s.totals.stolen);
    return this.registry.metrics();
  }

  private count(name: string, value: number): void {
    const delta = value - (this.last[name] ?? 0);
    if (delta > 0) this.c[name]!.inc(delta);
    this.last[name] = Math.max(value, this.last[name] ?? 0);
  }
}
