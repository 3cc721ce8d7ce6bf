// npm run bench [-- --vs-dask] [--workers N] [--only key,key] [--json] [--cpu] [--warm N] [--repeat N]
// Runs dd's cluster workloads (and with --vs-dask the reference's, in the same run) and prints
// a table of figures, dd/dask ratios and the targets of the core issue. --cpu adds CPU time per
// task of this process (scheduler and client) and of the workers, and how busy the cores were.
// --warm N repeats the tiny-task workloads N more times and adds their medians as `<key>:warm`
// rows (no target: the targets apply to the first pass, the one the reference's script runs).
// On Linux it also prints the host's steal time during each system's run (host-steal.ts).
// --repeat N runs everything N times, each on a fresh cluster (dd and dask alternating), and
// reports each figure's median with its range: one first pass swings by +-30% on a shared VM.

import { median, runClusterWorkloads, type Figures } from './cluster-workloads';
import { runDaskBench } from './dask';
import { readCpuTimes, stealPercent } from './host-steal';

/** Targets on a 2-core machine; `lower` means smaller is better. */
const TARGETS: Record<string, { target: number; lower?: boolean }> = {
  roundtrip_ms_median: { target: 1, lower: true },
  map_10000_tasks_per_s: { target: 10_000 },
  tree_reduce_8191_tasks_per_s: { target: 5_000 },
  get_graph_10001_tasks_per_s: { target: 10_000 },
  p2p_transfer_MB_per_s: { target: 500 },
  gather_MB_per_s: { target: 500 },
};

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

function fmt(v: number | undefined): string {
  if (v === undefined) return '-';
  return v >= 100 ? v.toFixed(0) : v.toFixed(2);
}

function countArg(args: string[], flag: string, fallback: number, min: number): number {
  const raw = argValue(args, flag);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`${flag}: expected a whole number of at least ${min}, got ${raw}`);
  return n;
}

export async function main(args: string[]): Promise<void> {
  const nWorkers = countArg(args, '--workers', 2, 1);
  const only = argValue(args, '--only')?.split(',');
  const warmPasses = countArg(args, '--warm', 0, 0);
  const repeat = countArg(args, '--repeat', 1, 1);
  const vsDask = args.includes('--vs-dask');
  const ddRuns: Figures[] = [];
  const daskRuns: Figures[] = [];
  const ddSteals: number[] = [];
  const daskSteals: number[] = [];
  for (let run = 0; run < repeat; run++) {
    const tag = repeat > 1 ? `dd run ${run + 1}/${repeat}` : 'dd';
    const ddStart = readCpuTimes();
    ddRuns.push(await runClusterWorkloads({ nWorkers, ...(only ? { only } : {}), cpu: args.includes('--cpu'), warmPasses, log: (l) => console.error(`${tag}: ${l}`) }));
    const ddSteal = stealPercent(ddStart, readCpuTimes());
    if (ddSteal !== undefined) ddSteals.push(ddSteal);
    // Alternating with dd's runs, so that both see the same host conditions.
    if (vsDask && (run === 0 || daskRuns.length > 0)) {
      const daskStart = readCpuTimes();
      try {
        daskRuns.push(await runDaskBench(nWorkers));
        const daskSteal = stealPercent(daskStart, readCpuTimes());
        if (daskSteal !== undefined) daskSteals.push(daskSteal);
      } catch (err) {
        console.error(`reference system not measured: ${(err as Error).message}`);
      }
    }
  }
  const dd = medianFigures(ddRuns);
  const dask = daskRuns.length > 0 ? medianFigures(daskRuns) : undefined;
  const ddSteal = ddSteals.length > 0 ? median(ddSteals) : undefined;
  const daskSteal = daskSteals.length > 0 ? median(daskSteals) : undefined;
  if (args.includes('--json')) {
    const steal = ddSteal === undefined ? {} : { host_steal_percent: { dd: round2(ddSteal), ...(daskSteal === undefined ? {} : { dask: round2(daskSteal) }) } };
    const runs = repeat > 1 ? { runs: { dd: ddRuns, ...(daskRuns.length > 0 ? { dask: daskRuns } : {}) } } : {};
    console.log(JSON.stringify({ dd, ...(dask ? { dask } : {}), ...steal, node: process.version, ...runs }));
    return;
  }
  const rows = [['workload', 'dd', ...(repeat > 1 ? ['dd range'] : []), 'dask', 'dd/dask', 'target', 'met']];
  for (const [key, value] of Object.entries(dd)) {
    const ref = dask?.[key];
    const t = TARGETS[key];
    const met = t === undefined ? '' : (t.lower ? value <= t.target : value >= t.target) ? 'yes' : 'no';
    const range = repeat > 1 ? [rangeOf(ddRuns, key)] : [];
    rows.push([key, fmt(value), ...range, fmt(ref), ref ? (value / ref).toFixed(2) : '-', t ? `${t.lower ? '<=' : '>='} ${t.target}` : '', met]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  // The first pass is largely V8 warming up, so the Node version moves every tiny-task figure.
  console.log(`(${nWorkers} worker processes, 1 thread each, Node ${process.version}; roundtrip: lower is better, others: higher)`);
  if (repeat > 1) console.log(`(medians of ${repeat} runs, each on a fresh cluster${daskRuns.length > 0 ? `; dask: of ${daskRuns.length} runs, alternating with dd's` : ''})`);
  if (ddSteal !== undefined) {
    const of = (p: number) => `${p.toFixed(1)}%`;
    const spread = (xs: number[]) => (xs.length > 1 ? ` (${of(Math.min(...xs))}-${of(Math.max(...xs))})` : '');
    console.log(
      `host steal: ${of(ddSteal)}${spread(ddSteals)} of CPU time during dd's run${repeat > 1 ? 's' : ''}` +
        `${daskSteal === undefined ? '' : `, ${of(daskSteal)}${spread(daskSteals)} during dask's`}` +
        ' (CPU time the hypervisor gave to other guests: runs with more of it run slower)',
    );
  }
}

/** Each key's median over the runs that measured it, keys in the order they first appear. */
function medianFigures(runs: readonly Figures[]): Figures {
  const out: Figures = {};
  const keys: string[] = [];
  for (const r of runs) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  for (const k of keys) out[k] = median(valuesOf(runs, k));
  return out;
}

function rangeOf(runs: readonly Figures[], key: string): string {
  const values = valuesOf(runs, key);
  return values.length === 0 ? '-' : `${fmt(Math.min(...values))}-${fmt(Math.max(...values))}`;
}

/** A figure's values in the runs that measured it. */
function valuesOf(runs: readonly Figures[], key: string): number[] {
  return runs.flatMap((r) => (r[key] === undefined ? [] : [r[key]!]));
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
