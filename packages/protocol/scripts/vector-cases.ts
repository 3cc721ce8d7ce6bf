// The golden vectors: messages covering every family and wire feature, with the options they
// are encoded with, and a tagged JSON description of each value that other languages can check
// against (see tools/protocol-vectors/README.md for the tagged form).

import { registerSerializer, toSerialize, type EncodeOptions } from '../src';

export interface VectorCase {
  name: string;
  about: string;
  options?: EncodeOptions;
  make(): unknown;
}

/** A registered class, to pin the wire form of registered classes. */
export class VectorPoint {
  constructor(readonly x: number, readonly y: number) {}
  toData(): unknown {
    return { xy: new Float64Array([this.x, this.y]) };
  }
}

export const VECTOR_POINT_NAME = 'vectors.Point';

export function registerVectorClasses(): void {
  registerSerializer(VectorPoint, {
    name: VECTOR_POINT_NAME,
    serialize: (p) => p.toData(),
    deserialize: (d) => {
      const xy = (d as { xy: Float64Array }).xy;
      return new VectorPoint(xy[0]!, xy[1]!);
    },
  });
}

function errorWithFixedStack<E extends Error>(error: E, stack: string): E {
  Object.defineProperty(error, 'stack', { value: stack, writable: true, configurable: true, enumerable: false });
  return error;
}

/** Bytes with a simple deterministic pattern that lz4 compresses well. */
function compressibleBytes(length: number): Buffer {
  return Buffer.from('dd golden vector, compressible text. '.repeat(Math.ceil(length / 37)).slice(0, length));
}

/** Deterministic bytes that do not compress (xorshift32). */
function noiseBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const VECTOR_CASES: readonly VectorCase[] = [
  { name: 'empty-map', about: 'the empty map, one frame', make: () => ({}) },
  { name: 'null', about: 'nil as the whole message', make: () => null },
  { name: 'task-finished', about: 'a typical small plain op message', make: () => ({ op: 'task-finished', key: 'inc-abc', nbytes: 8, status: 'OK' }) },
  {
    name: 'plain-nested',
    about: 'nested maps and arrays, integers of every msgpack width, floats, booleans, nil',
    make: () => ({
      ints: [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1],
      floats: [1.5, -0.25, 1e300, 2 ** 53 + 2],
      flags: [true, false, null],
      nested: { a: { b: { c: [[], {}, [[1]]] } } },
    }),
  },
  {
    name: 'unicode',
    about: 'multi-byte UTF-8 in keys and values, a str16 string',
    make: () => ({ 'ключ': 'значение', emoji: '☃ 𝄞 🎉', cjk: '日本語のテキスト', long: 'é'.repeat(200), empty: '' }),
  },
  { name: 'special-numbers', about: '-0, NaN and infinities stay in frame 0 as float64', make: () => [-0, NaN, Infinity, -Infinity] },
  { name: 'buffer', about: 'a Buffer out of band in an op message', make: () => ({ op: 'update-data', data: { x: Buffer.from('hello, dd') } }) },
  { name: 'buffer-message', about: 'a Buffer as the whole message (frame 0 is only a placeholder)', make: () => Buffer.from([0, 1, 2, 254, 255]) },
  { name: 'uint8array-and-empty', about: 'Uint8Array vs Buffer, and empty binary values', make: () => [new Uint8Array([9, 8, 7]), Buffer.alloc(0), new Uint8Array(0)] }, // the Uint8Arrays inline (msgpack bin), the Buffer out of band
  {
    name: 'typed-arrays',
    about: 'every typed array type, little-endian element bytes',
    make: () => ({
      i8: new Int8Array([-128, -1, 0, 127]),
      u8c: new Uint8ClampedArray([0, 128, 255]),
      i16: new Int16Array([-32768, -2, 1, 32767]),
      u16: new Uint16Array([0, 1, 65535]),
      i32: new Int32Array([-(2 ** 31), -3, 2 ** 31 - 1]),
      u32: new Uint32Array([0, 2 ** 32 - 1]),
      f32: new Float32Array([1.5, -0.25, 3.4028234663852886e38]),
      f64: new Float64Array([Math.PI, -1e-300, 0]),
      i64: new BigInt64Array([-(2n ** 63n), -1n, 2n ** 63n - 1n]),
      u64: new BigUint64Array([0n, 2n ** 64n - 1n]),
    }),
  },
  {
    name: 'dataview-arraybuffer',
    about: 'DataView (only its window) and ArrayBuffer',
    make: () => [new DataView(new Uint8Array([1, 2, 3, 4, 5]).buffer, 1, 3), new Uint8Array([6, 7]).buffer],
  },
  {
    name: 'map',
    about: 'a Map with integer, string, array and binary keys and special values (nested message)',
    make: () => new Map<unknown, unknown>([[1, 'one'], ['1', new Uint8Array([1])], [[1, 2], undefined], [Buffer.from('k'), new Map([['inner', 2n]])]]),
  },
  { name: 'set', about: 'a Set of mixed values', make: () => new Set<unknown>(['a', 1, null, new Date(0)]) },
  { name: 'date', about: 'Dates, including an invalid one (value NaN)', make: () => [new Date(Date.UTC(2021, 3, 1, 12, 30)), new Date(-1), new Date(NaN)] },
  { name: 'bigint', about: 'BigInts as decimal strings', make: () => ({ zero: 0n, small: 7n, big: 2n ** 100n, negative: -(2n ** 70n) }) },
  { name: 'undefined', about: 'undefined as property, array element and hole', make: () => ({ a: undefined, list: [1, undefined, 3] }) },
  { name: 'undefined-message', about: 'undefined as the whole message', make: () => undefined },
  {
    name: 'error',
    about: 'a TypeError with a RangeError cause, a custom property and a binary property',
    make: () => {
      const cause = errorWithFixedStack(new RangeError('inner'), 'RangeError: inner\n    at vector');
      const error = errorWithFixedStack(new TypeError('outer', { cause }), 'TypeError: outer\n    at vector');
      return Object.assign(error, { code: 'E_VECTOR', blob: Buffer.from('b') });
    },
  },
  { name: 'registered-class', about: `an instance of a class registered as ${VECTOR_POINT_NAME}`, make: () => ({ p: new VectorPoint(1.5, -2) }) },
  {
    name: 'msgpack-family',
    about: 'plain data sent out of band through the msgpack family (Serialize)',
    make: () => ({ op: 'x', table: toSerialize({ rows: [[1, 'a'], [2, 'b']], n: 2 }) }),
  },
  { name: 'split', about: 'a 100-byte Buffer split into 32-byte sub-frames (a Buffer: a Uint8Array this small travels inline)', options: { splitSize: 32 }, make: () => ({ data: Buffer.from(noiseBytes(100, 1)) }) },
  { name: 'lz4', about: 'a 4 KiB compressible buffer, lz4-compressed', options: { compression: 'lz4' }, make: () => ({ data: compressibleBytes(4096) }) },
  {
    name: 'lz4-split',
    about: 'a compressible buffer split into 3000-byte pieces, each compressed on its own (the last one is too small)',
    options: { compression: 'lz4', splitSize: 3000 },
    make: () => compressibleBytes(6800),
  },
  { name: 'lz4-incompressible', about: 'noise is not compressed even with lz4 on (a Buffer: a Uint8Array this small travels inline)', options: { compression: 'lz4' }, make: () => Buffer.from(noiseBytes(2048, 2)) },
  {
    name: 'kitchen-sink',
    about: 'everything nested in everything, lz4 on',
    options: { compression: 'lz4' },
    make: () => ({
      op: 'kitchen-sink',
      list: [new Map([[new Set([1]), [new Float64Array([0.5]), { deep: undefined }]]]), 3n, new Date(86_400_000)],
      text: compressibleBytes(2000),
      point: new VectorPoint(0, 1),
    }),
  },
];
