// CPU time the hypervisor gave to other guests while a workload ran ("steal" in /proc/stat).
// On a shared VM the same build's figures swing by ±30% between runs, and the slow runs are the
// ones with steal: printing it beside the figures says which runs to trust.

import { readFileSync } from 'node:fs';

export interface CpuTimes {
  steal: number;
  total: number;
}

/** This machine's cumulative CPU times (clock ticks, all cores), or undefined off Linux. */
export function readCpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    if (!line.startsWith('cpu ')) return undefined;
    // user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
    const fields = line.slice(4).trim().split(/\s+/).slice(0, 8).map(Number);
    if (fields.length < 8 || fields.some((f) => !Number.isFinite(f))) return undefined;
    return { steal: fields[7]!, total: fields.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

/** Percentage of CPU time stolen between two readings; undefined when either is missing. */
export function stealPercent(before: CpuTimes | undefined, after: CpuTimes | undefined): number | undefined {
  if (before === undefined || after === undefined) return undefined;
  const total = after.total - before.total;
  return total > 0 ? (100 * (after.steal - before.steal)) / total : undefined;
}
