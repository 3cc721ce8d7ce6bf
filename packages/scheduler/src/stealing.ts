// Which tasks to move from busy workers to idle ones: the choice half of the reference's Work
// Stealing chapter. Pure: it reads worker and task records and returns the moves; SchedulerState
// sends the steal-requests, keeps them in flight and applies the workers' answers.
//
// Placement puts a task where its dependencies are (data locality first). That can leave a few
// workers with long queues while others idle; stealing moves queued tasks when the move pays:
// the thief, with the transfer of the dependencies it lacks, would still start the task before
// the victim would (the reference's balance rule, with occupancies per thread).

import { comparePriority, type TaskState, type WorkerState } from './state-types';

export interface StealMove {
  readonly ts: TaskState;
  readonly victim: WorkerState;
  readonly thief: WorkerState;
  /** Seconds the move takes off the victim (the task's compute estimate). */
  readonly duration: number;
  /** Seconds it adds to the thief: compute estimate plus the transfer of what it lacks. */
  readonly thiefCost: number;
}

export interface StealCosts {
  /** Expected compute seconds of `ts`; `known` false when its prefix was never measured. */
  duration(ts: TaskState): { seconds: number; known: boolean };
  /** Seconds to bring `ts`'s missing dependencies to `ws` (0 when it lacks none). */
  transferTime(ts: TaskState, ws: WorkerState): number;
  /** Whether `ws` may run `ts` (loose restrictions allow any worker). */
  canRunOn(ts: TaskState, ws: WorkerState): boolean;
}

export interface StealLimits {
  /**
   * Tasks measured to take less than this are never moved: the request, its answer and the
   * new assignment cost more than waiting for them (the reference gives up below 5 ms).
   */
  minDurationS: number;
  /** Most victims looked at per balance, the busiest first (the reference takes 10). */
  maxVictims: number;
  /** Most queued tasks of one victim looked at per balance. */
  maxScanPerVictim: number;
}

export const DEFAULT_STEAL_LIMITS: StealLimits = { minDurationS: 0.001, maxVictims: 10, maxScanPerVictim: 10_000 };

/**
 * The moves that balance the cluster now. `idle` are the possible thieves; every running worker
 * with more tasks than threads is a possible victim. `planned` holds occupancy already promised
 * by steals in flight (positive for thieves, negative for victims), `inFlight` their tasks.
 */
export function planSteals(
  running: Iterable<WorkerState>,
  idle: Iterable<WorkerState>,
  inFlight: { has(ts: TaskState): boolean },
  planned: ReadonlyMap<WorkerState, number>,
  costs: StealCosts,
  limits: StealLimits = DEFAULT_STEAL_LIMITS,
): StealMove[] {
  const load = new Map<WorkerState, number>();
  const perThread = (ws: WorkerState): number => {
    let v = load.get(ws);
    if (v === undefined) load.set(ws, (v = (ws.occupancy + (planned.get(ws) ?? 0)) / ws.nthreads));
    return v;
  };
  const thieves: WorkerState[] = [];
  for (const ws of idle) if (ws.status === 'running') thieves.push(ws);
  if (thieves.length === 0) return [];
  const thiefSet = new Set(thieves);
  const victims: WorkerState[] = [];
  for (const ws of running) if (!thiefSet.has(ws) && ws.processing.size > ws.nthreads) victims.push(ws);
  if (victims.length === 0) return [];
  victims.sort((a, b) => perThread(b) - perThread(a));
  victims.length = Math.min(victims.length, limits.maxVictims);

  const moves: StealMove[] = [];
  for (const victim of victims) {
    const candidates: Array<{ ts: TaskState; seconds: number }> = [];
    let scanned = 0;
    for (const ts of victim.processing.keys()) {
      if (++scanned > limits.maxScanPerVictim) break;
      if (inFlight.has(ts) || !stealable(ts)) continue;
      const d = costs.duration(ts);
      if (d.known && d.seconds < limits.minDurationS) continue;
      candidates.push({ ts, seconds: d.seconds });
    }
    // The tasks the victim would run last first: the least likely to have started by the time
    // the request arrives, and the ones whose wait the move shortens most.
    candidates.sort((a, b) => comparePriority(b.ts.priority ?? [], a.ts.priority ?? []));
    // Leave the victim what its threads are running or about to run.
    const keep = Math.max(0, victim.nthreads - (victim.processing.size - candidates.length));
    for (let i = 0; i < candidates.length - keep; i++) {
      const { ts, seconds } = candidates[i] as { ts: TaskState; seconds: number };
      let thief: WorkerState | undefined;
      for (const w of thieves) if (costs.canRunOn(ts, w) && (thief === undefined || perThread(w) < perThread(thief))) thief = w;
      if (thief === undefined) continue;
      const transfer = costs.transferTime(ts, thief);
      // The reference's rule: the thief, transfer included, starts it before the victim would.
      if (perThread(thief) + transfer > perThread(victim) - seconds / 2) break;
      load.set(victim, perThread(victim) - seconds / victim.nthreads);
      load.set(thief, perThread(thief) + (seconds + transfer) / thief.nthreads);
      moves.push({ ts, victim, thief, duration: seconds, thiefCost: seconds + transfer });
    }
  }
  return moves;
}

/** Hard restrictions (workers, hosts, resources) pin a task; loose worker restrictions do not. */
function stealable(ts: TaskState): boolean {
  if (ts.resourceRestrictions !== null) return false;
  return ts.restrictions === null || ts.looseRestrictions;
}
