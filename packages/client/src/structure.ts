// Walking nested user values (arrays and plain objects, any depth) to find Futures: replaced by
// key references in task arguments, by their values in gather results.

import { keyRef } from '@dd/protocol';
import { isFuture, type Future } from './future';

export function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Maps the items of an array or the values of a plain object through `map`, copying the
 * container only if something changed (so values without Futures are never copied). Any other
 * object comes back as it is.
 */
export function mapChildren(value: object, map: (child: unknown, at: number | string) => unknown): unknown {
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const s = map(v, i);
      if (s !== v) (out ??= value.slice())[i] = s;
    }
    return out ?? value;
  }
  if (!isPlainObject(value)) return value;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(value)) {
    const v = value[k];
    const s = map(v, k);
    if (s !== v) (out ??= { ...value })[k] = s;
  }
  return out ?? value;
}

/**
 * Replaces each Future in `value` by `keyRef(future.key)` and calls `onFuture` for it. Returns
 * `value` itself when it holds no Future (no copies on the hot path).
 */
export function replaceFutures(value: unknown, onFuture: (f: Future) => void, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (isFuture(value)) {
    onFuture(value);
    return keyRef(value.key);
  }
  if (depth > 256) throw new RangeError('task arguments are nested more than 256 levels deep (or circular)');
  return mapChildren(value, (v) => replaceFutures(v, onFuture, depth + 1));
}

/** Every Future in `value`, depth first, in order. */
export function collectFutures(value: unknown): Future[] {
  const out: Future[] = [];
  replaceFutures(value, (f) => out.push(f));
  return out;
}

export const SKIP: unique symbol = Symbol('dd.skip');

/**
 * `value` with each Future replaced by `lookup(future)`; when lookup returns SKIP the element
 * is left out of its array / object (gather with errors: 'skip').
 */
export function substituteFutures(value: unknown, lookup: (f: Future) => unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (isFuture(value)) return lookup(value);
  if (depth > 256) throw new RangeError('structure is nested more than 256 levels deep (or circular)');
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const v of value) {
      const s = substituteFutures(v, lookup, depth + 1);
      if (s !== SKIP) out.push(s);
    }
    return out;
  }
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    const s = substituteFutures(value[k], lookup, depth + 1);
    if (s !== SKIP) out[k] = s;
  }
  return out;
}
