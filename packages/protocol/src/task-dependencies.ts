// A compute-task's dependencies (TaskDependencies in messages.ts): parallel arrays of keys,
// sizes and holder indexes. The scheduler builds them, the worker checks them on receipt (a
// malformed list is a clear error, never a half-applied task), and code that prefers the
// reference's records (`who_has`, `nbytes` keyed by dependency) converts with `dependencyRecords`.

import { ProtocolError } from './errors';
import type { Address, Key, TaskDependencies } from './messages';

/** Builds TaskDependencies from the reference's records (whoHas may leave out dependencies nobody else holds). */
export function taskDependencies(whoHas: Readonly<Record<Key, readonly Address[]>>, nbytes: Readonly<Record<Key, number>>, defaultNbytes = 0): TaskDependencies {
  const keys = [...new Set([...Object.keys(whoHas), ...Object.keys(nbytes)])];
  const holders: Address[] = [];
  const index = new Map<Address, number>();
  const out: TaskDependencies = { keys, nbytes: [], holders, whoHas: [] };
  for (const key of keys) {
    out.nbytes.push(Object.hasOwn(nbytes, key) ? nbytes[key]! : defaultNbytes);
    const at: number[] = [];
    for (const address of Object.hasOwn(whoHas, key) ? whoHas[key]! : []) {
      let i = index.get(address);
      if (i === undefined) {
        i = holders.length;
        holders.push(address);
        index.set(address, i);
      }
      if (!at.includes(i)) at.push(i);
    }
    out.whoHas.push(at);
  }
  return out;
}

/** The reference's records: holders per dependency (only those with any) and every dependency's size. */
export function dependencyRecords(deps: TaskDependencies | undefined): { whoHas: Record<Key, Address[]>; nbytes: Record<Key, number> } {
  const whoHas: Record<Key, Address[]> = {};
  const nbytes: Record<Key, number> = {};
  if (deps === undefined) return { whoHas, nbytes };
  for (let i = 0; i < deps.keys.length; i++) {
    const key = deps.keys[i]!;
    nbytes[key] = deps.nbytes[i]!;
    const at = deps.whoHas[i]!;
    if (at.length > 0) whoHas[key] = at.map((j) => deps.holders[j]!);
  }
  return { whoHas, nbytes };
}

/**
 * `value` as TaskDependencies, or a ProtocolError saying what is wrong: the arrays' lengths must
 * agree, keys and addresses be strings, sizes non-negative numbers, holder indexes in range.
 */
export function checkTaskDependencies(value: unknown): TaskDependencies {
  const fail = (why: string): never => {
    throw new ProtocolError(`compute-task dependencies: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('expected {keys, nbytes, holders, whoHas}');
  const { keys, nbytes, holders, whoHas } = value as Record<string, unknown>;
  if (!Array.isArray(keys) || !Array.isArray(nbytes) || !Array.isArray(holders) || !Array.isArray(whoHas)) {
    return fail('keys, nbytes, holders and whoHas must be arrays');
  }
  const n = keys.length;
  if (nbytes.length !== n || whoHas.length !== n) {
    fail(`keys (${n}), nbytes (${nbytes.length}) and whoHas (${whoHas.length}) must have one entry per dependency`);
  }
  for (const h of holders) if (typeof h !== 'string') fail('holders must be addresses (strings)');
  for (let i = 0; i < n; i++) {
    if (typeof keys[i] !== 'string') fail(`keys[${i}] is not a string`);
    const size: unknown = nbytes[i];
    if (typeof size !== 'number' || !(size >= 0)) fail(`nbytes[${i}] is not a size in bytes`);
    const at: unknown = whoHas[i];
    if (!Array.isArray(at)) return fail(`whoHas[${i}] is not a list of holder indexes`);
    for (const j of at as unknown[]) {
      if (!Number.isInteger(j) || (j as number) < 0 || (j as number) >= holders.length) fail(`whoHas[${i}] names holder ${String(j)} of ${holders.length}`);
    }
  }
  return value as TaskDependencies;
}
