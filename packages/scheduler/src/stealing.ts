// Which tasks to move from busy workers to idle ones: the choice half of the reference's Work
// Stealing chapter. Pure: it reads worker and task records and returns the moves; SchedulerState
// sends the steal-requests, keeps them in flight and applies the workers' answers.
//
// Placement puts a task where its dependencies are (data locality first). That can leave a few
// workers with long queues while others idle; stealing moves queued tasks when the move pays:
// the thief, with the transfer of the dependencies it lacks, would still finish the task before
// the victim would (the reference's balance rule, with occupancies per thread).

import { comparePriority, type TaskState, type WorkerState } from './state-types';

export interface StealMove {
  readonly ts: TaskState;
  readonly victim: WorkerState;
  readonly thief: WorkerState;
  /** Seconds the move takes off the victim (what its occupancy counts for the task). */
  readonly duration: number;
  /** Seconds it adds to the thief: compute estimate plus the transfer of what it lacks. */
  readonly thiefCost: number;
}

export interface StealCosts {
  /** Seconds to bring `ts`'s missing dependencies to `ws` (0 when it lacks none). */
  transferTime(ts: TaskState, ws: WorkerState): number;
}

export interface StealLimits {
  /**
   * Tasks measured to take less than this, or counted for less than this in their victim's
   * occupancy, are never moved: the request, its answer and the new assignment cost about as
   * much as the task (the reference gives up below 5 ms; dd's messages cost a tenth of its).
   */
  minDurationS: number;
  /** Most victims looked at per balance, the busiest first (the reference takes 10). */
  maxVictims: number;
  /** Most queued tasks of one victim considered per balance, the most recently assigned first. */
  maxCandidatesPerVictim: number;
  /** Most queued tasks of one victim looked at per balance (most may be too short to move). */
  maxScanPerVictim: number;
}

export const DEFAULT_STEAL_LIMITS: StealLimits = { minDurationS: 0.0002, maxVictims: 10, maxCandidatesPerVictim: 1000, maxScanPerVictim: 4000 };

/**
 * The moves that balance the cluster now. `idle` are the possible thieves (running workers);
 * `workers` with more tasks than threads are possible victims, paused ones included (they still
 * answer). `inFlight` are the steals asked for and not answered yet: their tasks are not moved
 * again, and the occupancy they promise counts (added to thieves, taken from victims).
 */
export function planSteals(
  workers: Iterable<WorkerState>,
  idle: Iterable<WorkerState>,
  inFlight: ReadonlyMap<TaskState, StealMove>,
  costs: StealCosts,
  limits: StealLimits = DEFAULT_STEAL_LIMITS,
): StealMove[] {
  // Derived per balance rather than kept up to date: a few hundred steals in flight at most.
  const planned = new Map<WorkerState, number>();
  for (const m of inFlight.values()) {
    planned.set(m.victim, (planned.get(m.victim) ?? 0) - m.duration);
    planned.set(m.thief, (planned.get(m.thief) ?? 0) + m.thiefCost);
  }
  const load = new Map<WorkerState, number>();
  const perThread = (ws: WorkerState): number => {
    let v = load.get(ws);
    if (v === undefined) load.set(ws, (v = (ws.occupancy + (planned.get(ws) ?? 0)) / ws.nthreads));
    return v;
  };
  const thieves: WorkerState[] = [];
  for (const ws of idle) if (ws.status === 'running') thieves.push(ws);
  if (thieves.length === 0) return [];
  const leastLoaded = (): WorkerState => {
    let best = thieves[0] as WorkerState;
    for (const w of thieves) if (perThread(w) < perThread(best)) best = w;
    return best;
  };
  const thiefSet = new Set(thieves);
  const victims: WorkerState[] = [];
  for (const ws of workers) {
    if (thiefSet.has(ws) || ws.status === 'closing' || ws.processing.size <= ws.nthreads) continue;
    // Not even a task that moves for free would finish sooner elsewhere: skip the scan.
    if (perThread(leastLoaded()) >= perThread(ws)) continue;
    victims.push(ws);
  }
  if (victims.length === 0) return [];
  victims.sort((a, b) => perThread(b) - perThread(a));
  victims.length = Math.min(victims.length, limits.maxVictims);

  const moves: StealMove[] = [];
  for (const victim of victims) {
    // Most recently assigned first: the tasks the victim starts last (it runs by priority, and
    // tasks are assigned roughly in priority order), the least likely to have started when the
    // request arrives and the ones whose wait a move shortens most.
    const queued = Array.from(victim.processing.keys());
    const candidates: Array<{ ts: TaskState; seconds: number }> = [];
    // Leave the victim what its threads are running or about to run.
    const stop = Math.max(victim.nthreads, queued.length - limits.maxScanPerVictim);
    for (let i = queued.length - 1; i >= stop && candidates.length < limits.maxCandidatesPerVictim; i--) {
      const ts = queued[i] as TaskState;
      if (inFlight.has(ts) || !stealable(ts)) continue;
      const measured = ts.prefix.durationAverage; // negative while never measured
      if (measured >= 0 && measured < limits.minDurationS) continue;
      // What the victim's occupancy counts for it (the estimate when it was assigned, kept
      // current by balance's re-evaluation): moving that keeps the books balanced. Not worth a
      // request when that is itself below the minimum.
      const seconds = victim.processing.get(ts) ?? 0;
      if (seconds < limits.minDurationS) continue;
      candidates.push({ ts, seconds });
    }
    candidates.sort((a, b) => comparePriority(b.ts.priority ?? [], a.ts.priority ?? []));
    for (const { ts, seconds } of candidates) {
      const thief = leastLoaded();
      const transfer = costs.transferTime(ts, thief);
      // The reference's rule: the thief, transfer included, finishes it sooner than the victim
      // would, by a margin of half the task (so tasks do not move back and forth).
      if (perThread(thief) + transfer + seconds > perThread(victim) - seconds / 2) break;
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
