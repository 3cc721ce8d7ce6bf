// dummy*() builders for pure SchedulerState tests.
import type { Address, Key, SchedulerToClientMsg, SchedulerToWorkerMsg, TaskDefinition, WireError } from '@dd/protocol';
import { SchedulerState } from '../src/scheduler-state';
import type { SchedulerStateOptions } from '../src/scheduler-state';
import type {
  AddWorkerEvent,
  Instruction,
  TaskErredEvent,
  TaskFinishedEvent,
  UpdateGraphEvent,
} from '../src/events';

let sid = 0;
const nextSid = (p: string): string => `${p}-${++sid}`;

export interface TestClock {
  now: number;
  (): number;
}
export function testClock(start = 1_000_000): TestClock {
  const f = (() => f.now) as TestClock;
  f.now = start;
  return f;
}

export function newState(opts: SchedulerStateOptions = {}): SchedulerState {
  return new SchedulerState({ validate: true, clock: testClock(), ...opts });
}

export function dummyWorker(address: Address, extra: Partial<AddWorkerEvent> = {}): AddWorkerEvent {
  return {
    kind: 'add-worker',
    address,
    name: extra.name ?? address,
    host: extra.host ?? '127.0.0.1',
    nthreads: 1,
    memoryLimit: 1e9,
    resources: {},
    stimulusId: nextSid('add-worker'),
    ...extra,
  };
}

export const SPEC = { language: 'js', data: new Uint8Array([1, 2, 3]) };

export function dummyTask(key: Key, dependencies: Key[] = [], extra: Partial<TaskDefinition> = {}): TaskDefinition {
  return { key, spec: SPEC, dependencies, ...extra };
}

export function dummyGraph(
  client: string,
  tasks: TaskDefinition[],
  keys: Key[] = tasks.map((t) => t.key),
  extra: Partial<UpdateGraphEvent> = {},
): UpdateGraphEvent {
  return { kind: 'update-graph', client, tasks, keys, stimulusId: nextSid('update-graph'), ...extra };
}

export function dummyFinished(worker: Address, key: Key, nbytes = 100, extra: Partial<TaskFinishedEvent> = {}): TaskFinishedEvent {
  return { kind: 'task-finished', worker, key, nbytes, startstops: [], stimulusId: nextSid('task-finished'), ...extra };
}

export function dummyErred(worker: Address, key: Key, message = 'boom'): TaskErredEvent {
  const exception: WireError = { name: 'Error', message, stack: `Error: ${message}\n    at task` };
  return { kind: 'task-erred', worker, key, exception, startstops: [], stimulusId: nextSid('task-erred') };
}

export function sid_(p = 'test'): string {
  return nextSid(p);
}

export function workerMsgs(instrs: Instruction[], worker: Address): SchedulerToWorkerMsg[] {
  return instrs.flatMap((i) => (i.type === 'send-worker' && i.worker === worker ? i.msgs : []));
}
export function clientMsgs(instrs: Instruction[], client: string): SchedulerToClientMsg[] {
  return instrs.flatMap((i) => (i.type === 'send-client' && i.client === client ? i.msgs : []));
}
/** worker -> keys of compute-task messages, in order. */
export function computed(instrs: Instruction[]): Record<Address, Key[]> {
  const out: Record<Address, Key[]> = {};
  for (const i of instrs) {
    if (i.type !== 'send-worker') continue;
    for (const m of i.msgs) if (m.op === 'compute-task') (out[i.worker] ??= []).push(m.key);
  }
  return out;
}
/** All compute-task keys in order, across workers. */
export function computeKeys(instrs: Instruction[]): Key[] {
  return Object.values(computed(instrs)).flat();
}
export function freed(instrs: Instruction[], worker: Address): Key[] {
  return workerMsgs(instrs, worker).flatMap((m) => (m.op === 'free-keys' ? m.keys : []));
}
