// npm run bench [-- --vs-dask] [--workers N] [--only key,key] [--json] [--cpu] [--warm N]
// Runs dd's cluster workloads (and with --vs-dask the reference's, in the same run) and prints
// a table of figures, dd/dask ratios and the targets of the core issue. --cpu adds CPU time per
// task of this process (scheduler and client) and of the workers, and how busy the cores were.
// --warm N repeats the tiny-task workloads N more times and adds their medians as `<key>:warm`
// rows (no target: the targets apply to the first pass, the one the reference's script runs).
// On Linux it also prints the host's steal time during each system's run (host-steal.ts).

import { runClusterWorkloads, type Figures } from './cluster-workloads';
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

export async function main(args: string[]): Promise<void> {
  const nWorkers = Number(argValue(args, '--workers') ?? 2);
  const only = argValue(args, '--only')?.split(',');
  const warmPasses = Number(argValue(args, '--warm') ?? 0);
  if (!Number.isInteger(warmPasses) || warmPasses < 0) throw new RangeError(`--warm: expected a count of passes, got ${argValue(args, '--warm')}`);
  const ddStart = readCpuTimes();
  const dd = await runClusterWorkloads({ nWorkers, ...(only ? { only } : {}), cpu: args.includes('--cpu'), warmPasses, log: (l) => console.error(`dd: ${l}`) });
  const ddSteal = stealPercent(ddStart, readCpuTimes());
  let dask: Figures | undefined;
  let daskSteal: number | undefined;
  if (args.includes('--vs-dask')) {
    const daskStart = readCpuTimes();
    try {
      dask = await runDaskBench(nWorkers);
      daskSteal = stealPercent(daskStart, readCpuTimes());
    } catch (err) {
      console.error(`reference system not measured: ${(err as Error).message}`);
    }
  }
  if (args.includes('--json')) {
    const steal = ddSteal === undefined ? {} : { host_steal_percent: { dd: round2(ddSteal), ...(daskSteal === undefined ? {} : { dask: round2(daskSteal) }) } };
    console.log(JSON.stringify({ dd, ...(dask ? { dask } : {}), ...steal }));
    return;
  }
  const rows = [['workload', 'dd', 'dask', 'dd/dask', 'target', 'met']];
  for (const [key, value] of Object.entries(dd)) {
    const ref = dask?.[key];
    const t = TARGETS[key];
    const met = t === undefined ? '' : (t.lower ? value <= t.target : value >= t.target) ? 'yes' : 'no';
    rows.push([key, fmt(value), fmt(ref), ref ? (value / ref).toFixed(2) : '-', t ? `${t.lower ? '<=' : '>='} ${t.target}` : '', met]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  console.log(`(${nWorkers} worker processes, 1 thread each; roundtrip: lower is better, others: higher)`);
  if (ddSteal !== undefined) {
    const of = (p: number) => `${p.toFixed(1)}%`;
    console.log(
      `host steal: ${of(ddSteal)} of CPU time during dd's run${daskSteal === undefined ? '' : `, ${of(daskSteal)} during dask's`}` +
        ' (CPU time the hypervisor gave to other guests: runs with more of it run slower)',
    );
  }
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
