// The workloads of ../shared/peer/dask_bench.py, on dd, with the same names and JSON keys so the
// two systems compare as ratios measured in one run.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Client, LocalCluster, wait, type ClientView } from '@dd/client';

// Task functions travel by source: self-contained.
const inc = (x: number) => x + 1;
const add = (x: number, y: number) => x + y;
const makeBytes = (n: number) => Buffer.alloc(n, 120);
const byteLength = (b: Uint8Array) => b.byteLength;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export interface WorkloadOptions {
  nWorkers: number;
  /** Run only the workloads whose key contains one of these substrings. */
  only?: string[];
  log?: (line: string) => void;
  /** Also report CPU time per task (µs, summed over threads) of this process (scheduler and client) and of the worker processes. */
  cpu?: boolean;
  /**
   * After the standard sequence, run the tiny-task workloads this many more times on the same
   * cluster and report their medians as `<key>:warm`: the figures once V8's JIT has compiled the
   * hot paths of every process (the first pass, as in the reference's script, follows a warm-up
   * of only 200 tasks and pays for most of that compilation).
   */
  warmPasses?: number;
}

/** CPU time (µs, user + system, all threads) of a process, from /proc (Linux); undefined elsewhere. */
function processCpuMicros(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

export type Figures = Record<string, number>;

const cores = availableParallelism();

/** The median (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

export async function runClusterWorkloads(options: WorkloadOptions): Promise<Figures> {
  const wanted = (key: string) => !options.only || options.only.some((s) => key.includes(s));
  const log = options.log ?? (() => {});
  const cluster = await LocalCluster.start({ nWorkers: options.nWorkers, threadsPerWorker: 1, processes: true });
  const client = await Client.connect(cluster);
  const impure = client.options({ pure: false });
  const out: Figures = {};
  // CPU per task: this process (scheduler + client) via process.cpuUsage, workers from /proc.
  const measure = async <T>(key: string, tasks: number, run: () => Promise<T>): Promise<T> => {
    if (!options.cpu) return run();
    const self0 = process.cpuUsage();
    const pids = cluster.pids;
    const w0 = pids.map(processCpuMicros);
    const t0 = performance.now();
    const result = await run();
    const wall = (performance.now() - t0) * 1000;
    const self = process.cpuUsage(self0);
    const w = pids.map((p, i) => (processCpuMicros(p) ?? NaN) - (w0[i] ?? NaN));
    const sched = self.user + self.system;
    const workers = w.reduce((a, b) => a + b, 0);
    out[`${key}:cpu_us_per_task_sched_client`] = sched / tasks;
    out[`${key}:cpu_us_per_task_workers`] = workers / tasks;
    out[`${key}:cpu_busy_fraction_of_cores`] = (sched + workers) / wall / cores;
    log(`${key} cpu/task µs: scheduler+client ${(sched / tasks).toFixed(1)}, workers ${w.map((x) => (x / tasks).toFixed(1)).join('+')}; busy ${((sched + workers) / wall / cores * 100).toFixed(0)}% of ${cores} cores, this process ${(sched / wall * 100).toFixed(0)}% of a core`);
    return result;
  };
  try {
    // dask_bench.py drops these futures at once (CPython frees them when the statement ends, and
    // the scheduler releases their keys); here that would wait for a garbage collection, whose
    // release then lands in the middle of a measured workload. Release them as CPython would.
    const warmup = impure.map(inc, range(200));
    await client.gather(warmup);
    for (const f of warmup) f.release();

    const warm: Record<string, number[]> = {};
    const passes = 1 + Math.max(0, options.warmPasses ?? 0);
    for (let pass = 0; pass < passes; pass++) {
      const sample = await tinyTaskWorkloads(client, impure, pass === 0 ? measure : unmeasured, wanted, pass === 0 ? log : () => {});
      for (const [key, value] of Object.entries(sample)) {
        if (pass === 0) out[key] = value;
        else (warm[key] ??= []).push(value);
      }
    }
    for (const [key, values] of Object.entries(warm)) {
      out[`${key}:warm`] = median(values);
      log(`${key}:warm ${median(values).toFixed(key.startsWith('roundtrip') ? 3 : 0)} (median of ${values.length})`);
    }

    const workers = Object.keys((await client.schedulerInfo()).workers);
    if (wanted('p2p_transfer_MB_per_s') && workers.length >= 2) {
      const size = 200 * 2 ** 20;
      const big = client.options({ pure: false, workers: [workers[0]!] }).submit(makeBytes, size);
      await wait([big]);
      const t = performance.now();
      const n = await client.options({ pure: false, workers: [workers[1]!] }).submit(byteLength, big);
      const dt = (performance.now() - t) / 1000;
      if (n !== size) throw new Error(`p2p transfer returned ${n} bytes, expected ${size}`);
      out.p2p_transfer_MB_per_s = size / dt / 2 ** 20;
      big.release();
      log(`p2p_transfer_MB_per_s ${out.p2p_transfer_MB_per_s.toFixed(0)}`);
    }

    if (wanted('gather_MB_per_s')) {
      const size = 100 * 2 ** 20;
      const big = impure.submit(makeBytes, size);
      await wait([big]);
      const t = performance.now();
      const value = await big.result();
      const dt = (performance.now() - t) / 1000;
      if (value.byteLength !== size) throw new Error(`gather returned ${value.byteLength} bytes, expected ${size}`);
      out.gather_MB_per_s = size / dt / 2 ** 20;
      big.release();
      log(`gather_MB_per_s ${out.gather_MB_per_s.toFixed(0)}`);
    }
  } finally {
    await client.close();
    await cluster.close();
  }
  return out;
}

type Measure = <T>(key: string, tasks: number, run: () => Promise<T>) => Promise<T>;
const unmeasured: Measure = (_key, _tasks, run) => run();

/** The workloads of tiny tasks (round trip, map, tree reduction, graph): one pass. */
async function tinyTaskWorkloads(client: Client, impure: ClientView, measure: Measure, wanted: (key: string) => boolean, log: (line: string) => void): Promise<Figures> {
  const out: Figures = {};
  if (wanted('roundtrip_ms_median')) {
    const lat: number[] = [];
    await measure('roundtrip', 300, async () => {
      for (let i = 0; i < 300; i++) {
        const t = performance.now();
        const f = impure.submit(inc, i);
        await f;
        lat.push(performance.now() - t);
        f.release(); // `client.submit(...).result()` drops its future at once in dask_bench.py
      }
    });
    out.roundtrip_ms_median = median(lat);
    log(`roundtrip_ms_median ${out.roundtrip_ms_median.toFixed(3)}`);
  }

  if (wanted('map_10000_tasks_per_s')) {
    const t = performance.now();
    const fs = await measure('map', 10_000, async () => {
      const fs = impure.map(inc, range(10_000));
      await client.gather(fs);
      return fs;
    });
    out.map_10000_tasks_per_s = 10_000 / ((performance.now() - t) / 1000);
    for (const f of fs) f.release();
    log(`map_10000_tasks_per_s ${out.map_10000_tasks_per_s.toFixed(0)}`);
  }

  if (wanted('tree_reduce_8191_tasks_per_s')) {
    const t = performance.now();
    const level = await measure('tree', 8191, async () => {
      let level = impure.map(inc, range(4096));
      while (level.length > 1) {
        const next = [];
        for (let i = 0; i < level.length; i += 2) next.push(impure.submit(add, level[i]!, level[i + 1]!));
        // dask_bench.py's `L = [...]` drops the previous level, which CPython releases at once;
        // here that waits for a garbage collection (FinalizationRegistry), whose release of 8 000
        // keys then lands in the middle of a later workload (gather fell from ~700 to ~240 MB/s).
        for (const f of level) f.release();
        level = next;
      }
      await level[0]!;
      return level;
    });
    out.tree_reduce_8191_tasks_per_s = 8191 / ((performance.now() - t) / 1000);
    level[0]!.release();
    log(`tree_reduce_8191_tasks_per_s ${out.tree_reduce_8191_tasks_per_s.toFixed(0)}`);
  }

  if (wanted('get_graph_10001_tasks_per_s')) {
    // dask_bench.py: {("x", i): (inc, i)} for 10 000 i, plus "total": (sum, [("x", i), ...]).
    // The graph is built outside the timed region, as in the reference; a fresh token per run
    // keeps keys from colliding with an earlier run's.
    const n = 10_000;
    const g = new Map<string | (string | number)[], unknown>();
    const run = `x-${Date.now()}`;
    for (let i = 0; i < n; i++) g.set([run, i], [inc, i]);
    g.set('total', [sum, Array.from({ length: n }, (_, i) => [run, i])]);
    const t = performance.now();
    const total = await measure('get_graph', n + 1, () => client.get(g, 'total'));
    out.get_graph_10001_tasks_per_s = (n + 1) / ((performance.now() - t) / 1000);
    if (total !== (n * (n + 1)) / 2) throw new Error(`get_graph returned ${String(total)}, expected ${(n * (n + 1)) / 2}`);
    log(`get_graph_10001_tasks_per_s ${out.get_graph_10001_tasks_per_s.toFixed(0)}`);
  }
  return out;
}
