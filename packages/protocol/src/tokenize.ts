// Deterministic tokens of values, for task keys: equal values give the same token in every
// process, on every machine, in every runtime. A value is first turned into a canonical JSON
// form, serialized with fast-json-stable-stringify (object keys sorted) and hashed with MD5
// (see digest.ts).
//
// Canonical form: strings, booleans, null and finite numbers other than -0 are themselves;
// plain objects are objects of canonical values; every other value is an array whose first
// element is a one-letter tag, so tagged values never collide with user data:
//   ['A', ...items]                       array (holes count as undefined)
//   ['u']                                 undefined
//   ['n', 'NaN' | 'Infinity' | '-Infinity' | '-0']
//   ['i', decimal]                        bigint
//   ['b', type, byteLength, md5 of bytes] Buffer, typed array, DataView, ArrayBuffer (by content)
//   ['M', [k, v]...]                      Map, entries sorted by the canonical text of the key
//   ['S', ...items]                       Set, items sorted by canonical text
//   ['D', ms | 'NaN']                     Date
//   ['f', source]                         function (by source text; closures are not seen)
//   ['y', description]                    symbol
//   ['E', name, message, props, cause?]   Error (stack excluded: it differs between processes)
//   ['C', constructor name, props]        other class instances, by own enumerable properties

import stableStringify from 'fast-json-stable-stringify';
import { md5Hex, md5HexOfText } from './digest';
import { SerializationError } from './errors';
import { isPlainObject } from './msgpack-codec';

type Canonical = null | boolean | number | string | Canonical[] | { [key: string]: Canonical };

function bytesOf(value: ArrayBufferView | ArrayBuffer): Uint8Array {
  return ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value);
}

function byText(a: [string, Canonical], b: [string, Canonical]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

class Canonicalizer {
  /** Objects on the current path, to refuse cycles instead of recursing forever. */
  private readonly path = new Set<object>();

  canonical(value: unknown): Canonical {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        if (Number.isFinite(value) && !Object.is(value, -0)) return value;
        return ['n', Object.is(value, -0) ? '-0' : String(value)];
      case 'undefined':
        return ['u'];
      case 'bigint':
        return ['i', value.toString()];
      case 'function':
        return ['f', Function.prototype.toString.call(value)];
      case 'symbol':
        return ['y', value.description ?? ''];
      case 'object':
        return value === null ? null : this.object(value);
      default:
        throw new SerializationError(`cannot tokenize a value of type ${typeof value}`);
    }
  }

  private object(value: object): Canonical {
    if (this.path.has(value)) throw new SerializationError('cannot tokenize a cyclic structure');
    this.path.add(value);
    try {
      return this.objectOnPath(value);
    } finally {
      this.path.delete(value);
    }
  }

  private objectOnPath(value: object): Canonical {
    if (Array.isArray(value)) {
      const out: Canonical[] = ['A'];
      for (let i = 0; i < value.length; i++) out.push(this.canonical(value[i]));
      return out;
    }
    if (isPlainObject(value)) return this.props(value);
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      const bytes = bytesOf(value);
      return ['b', value.constructor.name, bytes.byteLength, md5Hex(bytes)];
    }
    if (value instanceof Map) {
      const entries: [string, Canonical][] = [];
      for (const [k, v] of value) {
        const key = this.canonical(k);
        entries.push([stableStringify(key), [key, this.canonical(v)]]);
      }
      return ['M', ...entries.sort(byText).map((e) => e[1])];
    }
    if (value instanceof Set) {
      const items: [string, Canonical][] = [];
      for (const item of value) {
        const c = this.canonical(item);
        items.push([stableStringify(c), c]);
      }
      return ['S', ...items.sort(byText).map((e) => e[1])];
    }
    if (value instanceof Date) {
      const time = value.getTime();
      return ['D', Number.isNaN(time) ? 'NaN' : time];
    }
    if (value instanceof Error) {
      const out: Canonical[] = ['E', String(value.name), String(value.message), this.props(value)];
      if (Object.hasOwn(value, 'cause')) out.push(this.canonical(value.cause));
      return out;
    }
    return ['C', (value.constructor as { name?: string } | undefined)?.name ?? '', this.props(value)];
  }

  private props(value: object): { [key: string]: Canonical } {
    const out: { [key: string]: Canonical } = {};
    for (const key of Object.keys(value)) out[key] = this.canonical((value as Record<string, unknown>)[key]);
    return out;
  }
}

/** The canonical JSON text tokenize hashes; exposed for debugging unexpected key differences. */
export function canonicalText(...values: unknown[]): string {
  const canonicalizer = new Canonicalizer();
  return stableStringify(values.map((v) => canonicalizer.canonical(v)));
}

/** A 32-hex-digit token of `values`: equal values give equal tokens in any process. */
export function tokenize(...values: unknown[]): string {
  return md5HexOfText(canonicalText(...values));
}

/**
 * The key of a pure task: `<function name>-<token of function source and arguments>`, with
 * 'lambda' for anonymous functions.
 */
export function keyFor(fn: (...args: never[]) => unknown, args: readonly unknown[]): string {
  const name = fn.name === '' ? 'lambda' : fn.name;
  return `${name}-${tokenize(fn, ...args)}`;
}
