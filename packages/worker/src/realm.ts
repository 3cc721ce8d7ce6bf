// Values that come back from a worker thread are built by structured clone in the host realm.
// When this module runs inside another realm (a vm context: jest runs every test file in one),
// those objects have the host's Object.prototype, and "is this a plain object?" checks of this
// realm (e.g. @dd/protocol's msgpack encoder) reject them. In that case only, results are copied
// into this realm. In a normal process the realms are the same and nothing is copied.

import * as vm from 'node:vm';

const hostObject = vm.runInThisContext('Object') as ObjectConstructor;
const hostArray = vm.runInThisContext('Array') as ArrayConstructor;

/** True when this code runs in a different realm from the host (e.g. under jest). */
export const foreignRealm = hostObject !== Object;

/** Copies host-realm plain objects, arrays, Maps, Sets, Dates and Errors into this realm (depth-limited). */
export function adoptFromHost<T>(value: T, depth = 0): T {
  if (!foreignRealm || typeof value !== 'object' || value === null || depth > 64) return value;
  const v = value as unknown;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return value;
  if (Array.isArray(v)) {
    const proto = Object.getPrototypeOf(v);
    if (proto !== hostArray.prototype) return value;
    return v.map((x) => adoptFromHost(x, depth + 1)) as T;
  }
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === hostObject.prototype) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object)) out[k] = adoptFromHost((v as Record<string, unknown>)[k], depth + 1);
    return out as T;
  }
  const tag = Object.prototype.toString.call(v);
  if (tag === '[object Map]' && !(v instanceof Map)) {
    return new Map([...(v as Map<unknown, unknown>)].map(([a, b]) => [adoptFromHost(a, depth + 1), adoptFromHost(b, depth + 1)])) as T;
  }
  if (tag === '[object Set]' && !(v instanceof Set)) {
    return new Set([...(v as Set<unknown>)].map((a) => adoptFromHost(a, depth + 1))) as T;
  }
  if (tag === '[object Date]' && !(v instanceof Date)) return new Date((v as Date).getTime()) as T;
  return value;
}
