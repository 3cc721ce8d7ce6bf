// dd's own msgpack encoder (msgpack-encoder.ts) writes the bytes @msgpack/msgpack's Encoder
// writes for plain values, and applies dd's rules (out of band, -0, limits) on top.
import { Encoder } from '@msgpack/msgpack';
import { MessageEncoder, NotPlainError, PLACEHOLDER_KEY, type OutOfBandSink } from '../src/msgpack-encoder';
import { SerializationError } from '../src';

const library = new Encoder({ maxDepth: 10_000 });

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Plain values of every msgpack type dd writes (no -0: dd writes it differently on purpose). */
function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 8 : 10));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2: {
      const bits = [4, 5, 7, 8, 15, 16, 31, 32, 33, 40, 53][Math.floor(r() * 11)]!;
      const n = Math.floor(r() * 2 ** bits) + 1;
      return r() < 0.4 ? -n : n;
    }
    case 3:
      return [(r() - 0.5) * 10 ** Math.floor(r() * 12), NaN, Infinity, -Infinity, 2 ** 60, -(2 ** 60), 0.1][Math.floor(r() * 7)];
    case 4: {
      const n = [0, 1, 5, 16, 17, 31, 32, 50, 51, 60, 255, 256, 300, 70000][Math.floor(r() * 14)]!;
      const alphabet = r() < 0.7 ? 'abcdefghij-_[]0123456789' : 'aé€😀\u0080\ud800\udc00';
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
      return s;
    }
    case 5:
      return Uint8Array.from({ length: [0, 3, 255, 256, 300, 4096][Math.floor(r() * 6)]! }, (_, i) => i & 0xff);
    case 6:
      return [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 32, -(2 ** 31) - 1, 0][Math.floor(r() * 5)];
    case 7:
      return ['op', 'key', 'nbytes', 'stimulusId'][Math.floor(r() * 4)];
    case 8:
      if (r() < 0.03) return Array.from({ length: [16, 65535, 65536][Math.floor(r() * 3)]! }, (_, i) => i * 3);
      return Array.from({ length: Math.floor(r() * 8) }, () => randomValue(r, depth + 1));
    default: {
      const out: Record<string, unknown> = r() < 0.1 ? Object.create(null) : {};
      const n = r() < 0.05 ? 17 : Math.floor(r() * 8);
      for (let i = 0; i < n; i++) out[`${String(randomValue(r, 99)).slice(0, 40)}${i}`] = randomValue(r, depth + 1);
      return out;
    }
  }
}

/** A sink that must not be called: every generated value is plain. */
const noSink: OutOfBandSink = {
  takeOutOfBand(value) {
    throw new Error(`unexpected out-of-band value ${String(value)}`);
  },
};

test('writes the library bytes for generated plain values', () => {
  const r = rng(20261123);
  const ours = new MessageEncoder(16); // small start: growth is exercised too
  for (let i = 0; i < 600; i++) {
    const value = randomValue(r, 0);
    const a = Buffer.from(ours.encodeValue(value, noSink));
    const b = Buffer.from(library.encode(value));
    if (!a.equals(b)) expect({ i, ours: a.toString('hex') }).toEqual({ i, ours: b.toString('hex') });
  }
});

test('encodeShared returns a view of its buffer at the given depth', () => {
  const e = new MessageEncoder();
  const view = e.encodeShared([1, 'a'], null, 2);
  expect(Buffer.from(view).equals(Buffer.from(library.encode([1, 'a'])))).toBe(true);
  expect(() => e.encodeShared([[1]], null, 512)).toThrow(SerializationError);
});

test('-0 travels as float64; other values as the library writes them', () => {
  const bytes = new MessageEncoder().encodeValue(-0, null);
  expect(Array.from(bytes)).toEqual([0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0]);
});

test('non-plain values go to the sink and leave a placeholder', () => {
  const taken: unknown[] = [];
  const sink: OutOfBandSink = { takeOutOfBand: (v) => taken.push(v) };
  class Point {
    x = 1;
  }
  const p = new Point();
  const big = new Uint8Array(5000);
  const bytes = new MessageEncoder().encodeValue({ a: undefined, b: p, c: 10n, d: big, e: Buffer.from('x') }, sink);
  expect(taken).toEqual([undefined, p, 10n, big, Buffer.from('x')]);
  const expected = library.encode({ a: { [PLACEHOLDER_KEY]: 1 }, b: { [PLACEHOLDER_KEY]: 2 }, c: { [PLACEHOLDER_KEY]: 3 }, d: { [PLACEHOLDER_KEY]: 4 }, e: { [PLACEHOLDER_KEY]: 5 } });
  expect(Buffer.from(bytes).equals(Buffer.from(expected))).toBe(true);
});

test('without a sink, a non-plain value is a NotPlainError naming it', () => {
  const e = new MessageEncoder();
  expect(() => e.encodeValue({ m: new Map() }, null)).toThrow(NotPlainError);
  expect(() => e.encodeValue(new Uint8Array(3), null)).toThrow(/an instance of Uint8Array/);
  // The encoder is usable again after a failure.
  expect(Array.from(e.encodeValue([1], null))).toEqual([0x91, 1]);
});

test('cycles, deep nesting and the reserved key are refused', () => {
  const e = new MessageEncoder();
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  expect(() => e.encodeValue(cyclic, null)).toThrow(/nested deeper than 512/);
  expect(() => e.encodeValue({ [PLACEHOLDER_KEY]: 1 }, null)).toThrow(/reserved/);
});
