// dd's own msgpack encoder (msgpack-encoder.ts) writes the bytes @msgpack/msgpack's Encoder
// writes for plain values, and applies dd's rules (out of band, -0, limits) on top.
import { Encoder } from '@msgpack/msgpack';
import { MessageEncoder, NotPlainError, PLACEHOLDER_KEY, type OutOfBandSink } from '../src/msgpack-encoder';
import { SerializationError } from '../src';
import { randomMsgpackValue, seededRandom } from './helpers';

const library = new Encoder({ maxDepth: 10_000 });

/** A sink that must not be called: every generated value is plain. */
const noSink: OutOfBandSink = {
  takeOutOfBand(value) {
    throw new Error(`unexpected out-of-band value ${String(value)}`);
  },
};

test('writes the library bytes for generated plain values', () => {
  const r = seededRandom(20261123);
  const ours = new MessageEncoder(16); // small start: growth is exercised too
  for (let i = 0; i < 600; i++) {
    const value = randomMsgpackValue(r, 0);
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
