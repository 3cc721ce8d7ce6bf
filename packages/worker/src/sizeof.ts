// Estimates how many bytes a value occupies, to account for data in the worker's memory
// (the reference's `sizeof`). Exact for binary data (Buffers, typed arrays, ArrayBuffers),
// UTF-8 length for strings (what they cost on the wire; V8 keeps them as 1 or 2 bytes per
// character), and a bounded traversal for objects, arrays, Maps and Sets: beyond
// SAMPLE_LIMIT elements the remaining ones are extrapolated from the sampled average, and
// beyond MAX_DEPTH a fixed cost is assumed, so sizing a huge structure stays cheap.

const OBJECT_OVERHEAD = 16;
const SLOT = 8;
const SAMPLE_LIMIT = 64;
const MAX_DEPTH = 8;

export function sizeof(value: unknown): number {
  return sizeOfValue(value, 0, new Set());
}

function sizeOfValue(value: unknown, depth: number, seen: Set<object>): number {
  switch (typeof value) {
    case 'string':
      return value.length < 256 ? utf8Length(value) + OBJECT_OVERHEAD : Buffer.byteLength(value, 'utf8') + OBJECT_OVERHEAD;
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'symbol':
      return SLOT;
    case 'bigint':
      return SLOT + Math.ceil(value.toString(16).length / 2);
    case 'function':
      return OBJECT_OVERHEAD;
    case 'object':
      break;
  }
  if (value === null) return SLOT;
  const obj = value as object;
  if (ArrayBuffer.isView(obj)) return obj.byteLength + OBJECT_OVERHEAD;
  if (obj instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && obj instanceof SharedArrayBuffer)) {
    return obj.byteLength + OBJECT_OVERHEAD;
  }
  if (seen.has(obj)) return SLOT;
  if (depth >= MAX_DEPTH) return OBJECT_OVERHEAD * 4;
  seen.add(obj);
  if (Array.isArray(obj)) return OBJECT_OVERHEAD + sampled(obj.length, (i) => obj[i], depth, seen);
  if (obj instanceof Map) {
    const entries = obj.entries();
    return OBJECT_OVERHEAD + sampledIter(obj.size, entries, (e: [unknown, unknown]) =>
      sizeOfValue(e[0], depth + 1, seen) + sizeOfValue(e[1], depth + 1, seen));
  }
  if (obj instanceof Set) {
    return OBJECT_OVERHEAD + sampledIter(obj.size, obj.values(), (v: unknown) => sizeOfValue(v, depth + 1, seen));
  }
  if (obj instanceof Date) return OBJECT_OVERHEAD + SLOT;
  const keys = Object.keys(obj);
  let total = OBJECT_OVERHEAD;
  const n = Math.min(keys.length, SAMPLE_LIMIT);
  for (let i = 0; i < n; i++) {
    const k = keys[i] as string;
    total += k.length + SLOT + sizeOfValue((obj as Record<string, unknown>)[k], depth + 1, seen);
  }
  if (keys.length > n) total += ((total - OBJECT_OVERHEAD) / n) * (keys.length - n);
  return Math.round(total);
}

function sampled(length: number, at: (i: number) => unknown, depth: number, seen: Set<object>): number {
  if (length === 0) return 0;
  const n = Math.min(length, SAMPLE_LIMIT);
  let total = 0;
  if (length <= SAMPLE_LIMIT) {
    for (let i = 0; i < n; i++) total += SLOT + sizeOfValue(at(i), depth + 1, seen);
    return total;
  }
  // Sample evenly across the array rather than only its head.
  const step = length / n;
  for (let i = 0; i < n; i++) total += SLOT + sizeOfValue(at(Math.floor(i * step)), depth + 1, seen);
  return Math.round((total / n) * length);
}

function sampledIter<T>(size: number, it: IterableIterator<T>, cost: (v: T) => number): number {
  if (size === 0) return 0;
  let total = 0;
  let n = 0;
  for (const v of it) {
    total += SLOT + cost(v);
    if (++n >= SAMPLE_LIMIT) break;
  }
  return n === 0 ? 0 : Math.round((total / n) * size);
}

function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
