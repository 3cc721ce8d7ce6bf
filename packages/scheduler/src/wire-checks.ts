// Cheap shape checks at the boundary: a message missing fields is rejected with a BadMessageError
// (an error reply for rpcs, a log line for stream messages) before it reaches the state machine.

import type { TaskDefinition } from '@dd/protocol';
import { BadMessageError } from './errors';

type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function where(op: string, field: string): string {
  return `${op}: field "${field}"`;
}

export function str(msg: Obj, field: string, op: string): string {
  const v = msg[field];
  if (typeof v !== 'string' || v === '') throw new BadMessageError(`${where(op, field)} must be a non-empty string`);
  return v;
}

export function optStr(msg: Obj, field: string, op: string): string | undefined {
  const v = msg[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BadMessageError(`${where(op, field)} must be a string`);
  return v;
}

export function num(msg: Obj, field: string, op: string): number {
  const v = msg[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadMessageError(`${where(op, field)} must be a finite number`);
  return v;
}

export function optNum(msg: Obj, field: string, op: string): number | undefined {
  const v = msg[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadMessageError(`${where(op, field)} must be a finite number`);
  return v;
}

export function strArray(msg: Obj, field: string, op: string): string[] {
  const v = msg[field];
  if (!Array.isArray(v)) throw new BadMessageError(`${where(op, field)} must be an array of strings`);
  for (const x of v) if (typeof x !== 'string') throw new BadMessageError(`${where(op, field)} must be an array of strings`);
  return v as string[];
}

export function optStrArray(msg: Obj, field: string, op: string): string[] | undefined {
  return msg[field] === undefined || msg[field] === null ? undefined : strArray(msg, field, op);
}

export function numRecord(msg: Obj, field: string, op: string, optional = false): Record<string, number> {
  const v = msg[field];
  if (optional && (v === undefined || v === null)) return {};
  if (!isObj(v)) throw new BadMessageError(`${where(op, field)} must be an object of numbers`);
  for (const k in v) if (typeof v[k] !== 'number') throw new BadMessageError(`${where(op, field)}.${k} must be a number`);
  return v as Record<string, number>;
}

export function strArrayRecord(msg: Obj, field: string, op: string): Record<string, string[]> {
  const v = msg[field];
  if (!isObj(v)) throw new BadMessageError(`${where(op, field)} must be an object of string arrays`);
  for (const k in v) {
    const a = v[k];
    if (!Array.isArray(a) || a.some((x) => typeof x !== 'string')) {
      throw new BadMessageError(`${where(op, field)}.${k} must be an array of strings`);
    }
  }
  return v as Record<string, string[]>;
}

function isBytes(v: unknown): boolean {
  return v instanceof Uint8Array || ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

/** Checks one task definition of an update-graph; returns it (typed) or throws. */
export function taskDefinition(v: unknown, i: number): TaskDefinition {
  const op = `update-graph tasks[${i}]`;
  if (!isObj(v)) throw new BadMessageError(`${op} must be an object`);
  str(v, 'key', op);
  const spec = v['spec'];
  if (!isObj(spec) || typeof spec['language'] !== 'string' || !isBytes(spec['data'])) {
    throw new BadMessageError(`${op}: field "spec" must be {language: string, data: bytes}`);
  }
  strArray(v, 'dependencies', op);
  optNum(v, 'order', op);
  optNum(v, 'retries', op);
  optStrArray(v, 'workers', op);
  if (v['resources'] !== undefined && v['resources'] !== null) numRecord(v, 'resources', op);
  if (v['annotations'] !== undefined && v['annotations'] !== null && !isObj(v['annotations'])) {
    throw new BadMessageError(`${op}: field "annotations" must be an object`);
  }
  return v as unknown as TaskDefinition;
}

/**
 * A dependency cycle among one update-graph's tasks, as its keys in order (the first repeated at
 * the end), or undefined. dd's client rejects cycles itself; a graph from another peer with one
 * would leave its tasks waiting on each other forever. Only this update's tasks can form one: a
 * task the scheduler already knows never depends on a key submitted after it.
 */
export function findDependencyCycle(tasks: readonly TaskDefinition[]): string[] | undefined {
  let anyDependencies = false;
  for (const t of tasks) {
    if (t.dependencies.length > 0) {
      anyDependencies = true;
      break;
    }
  }
  if (!anyDependencies) return undefined; // a map: nothing to walk
  const index = new Map<string, number>();
  for (let i = 0; i < tasks.length; i++) index.set(tasks[i]!.key, i);
  // Iterative depth-first search (graphs can be deeper than the call stack): 0 unseen, 1 on the
  // current path, 2 finished.
  const mark = new Uint8Array(tasks.length);
  const path: number[] = [];
  const next: number[] = [];
  for (let root = 0; root < tasks.length; root++) {
    if (mark[root] !== 0) continue;
    path.push(root);
    next.push(0);
    mark[root] = 1;
    while (path.length > 0) {
      const top = path.length - 1;
      const node = path[top]!;
      const deps = tasks[node]!.dependencies;
      const d = next[top]!;
      if (d === deps.length) {
        mark[node] = 2;
        path.pop();
        next.pop();
        continue;
      }
      next[top] = d + 1;
      const dep = index.get(deps[d]!);
      if (dep === undefined || mark[dep] === 2) continue;
      if (mark[dep] === 1) {
        const cycle = path.slice(path.indexOf(dep)).map((i) => tasks[i]!.key);
        cycle.push(tasks[dep]!.key);
        return cycle;
      }
      mark[dep] = 1;
      path.push(dep);
      next.push(0);
    }
  }
  return undefined;
}
