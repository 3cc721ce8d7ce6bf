import { FrameDecoder, decodeMessage, encodeMessage, packFrames } from '../src';
import { roundTrip } from './helpers';

const TYPED_ARRAYS = [
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array,
] as const;

function protoOf(value: unknown): unknown {
  return Object.getPrototypeOf(value);
}

describe('dd family round trips keep exact types', () => {
  it.each(TYPED_ARRAYS.map((ctor) => [ctor.name, ctor] as const))('%s', (_name, ctor) => {
    const value = new ctor([1, 2, 3, 250]);
    const out = roundTrip({ value }).value;
    expect(protoOf(out)).toBe(ctor.prototype);
    expect([...out]).toEqual([...value]);
  });

  it('BigInt64Array and BigUint64Array', () => {
    const out = roundTrip([new BigInt64Array([-1n, 2n ** 62n]), new BigUint64Array([2n ** 64n - 1n])] as const);
    expect(out[0]).toBeInstanceOf(BigInt64Array);
    expect([...out[0]]).toEqual([-1n, 2n ** 62n]);
    expect(out[1]).toBeInstanceOf(BigUint64Array);
    expect([...out[1]]).toEqual([2n ** 64n - 1n]);
  });

  it('Float16Array when the runtime has it', () => {
    const ctor = (globalThis as unknown as { Float16Array?: new (v: number[]) => ArrayLike<number> }).Float16Array;
    if (ctor === undefined) return; // Node 20 has none; the encoder simply never meets one
    const out = roundTrip(new ctor([1.5, -2]));
    expect(protoOf(out)).toBe(ctor.prototype);
  });

  it('a typed array that is a view into a larger buffer keeps only its own elements', () => {
    const backing = new Float64Array([9, 1, 2, 3, 9]);
    const out = roundTrip(backing.subarray(1, 4));
    expect([...out]).toEqual([1, 2, 3]);
  });

  it('typed arrays decoded at an unaligned frame offset are copied into aligned memory', () => {
    // One byte of frame 0 shifts everything after it; whatever the offsets, values survive.
    for (const pad of ['', 'a', 'ab', 'abc']) {
      const out = roundTrip({ pad, f: new Float64Array([Math.PI, -0]), i: new Int32Array([-7]) });
      expect(out.f[0]).toBe(Math.PI);
      expect(Object.is(out.f[1], -0)).toBe(true);
      expect(out.i[0]).toBe(-7);
    }
  });

  it('typed arrays in frames that are Node Buffers at an odd byteOffset are copied (Buffer#slice is a view)', () => {
    // What a stream transport hands the decoder: Buffers from the socket, here a sub-frame that
    // starts at an odd offset of a larger Buffer (so a Float64Array view of it is impossible).
    const value = { f: new Float64Array([Math.PI, -1.5, 2 ** 60]), i: new Int32Array([-7, 8]), ab: new Uint8Array([1, 2, 3]).buffer };
    const frames = encodeMessage(value);
    for (const shift of [1, 3, 5, 7]) {
      const total = frames.reduce((n, f) => n + f.byteLength, 0);
      const backing = Buffer.alloc(total + shift + 8);
      let offset = shift;
      const views = frames.map((f) => {
        backing.set(f, offset);
        const view = backing.subarray(offset, offset + f.byteLength); // a Buffer view
        offset += f.byteLength;
        return view;
      });
      expect(views.some((v) => v.byteOffset % 8 !== 0)).toBe(true);
      const out = decodeMessage(views) as typeof value;
      expect(out.f).toBeInstanceOf(Float64Array);
      expect([...out.f]).toEqual([Math.PI, -1.5, 2 ** 60]);
      expect(out.f.byteOffset % 8).toBe(0);
      expect([...out.i]).toEqual([-7, 8]);
      // An ArrayBuffer is always a copy of its own bytes, never the Buffer's whole backing store.
      expect(out.ab.byteLength).toBe(3);
      expect([...new Uint8Array(out.ab)]).toEqual([1, 2, 3]);
    }
  });

  it('the same through FrameDecoder fed Buffer chunks split at every offset', () => {
    const value = { pad: 'x', f: new Float64Array([0.1, 0.2, 0.3]) };
    const packed = Buffer.from(packFrames(encodeMessage(value)));
    for (let cut = 1; cut < packed.byteLength; cut++) {
      const backing = Buffer.alloc(packed.byteLength + 1);
      packed.copy(backing, 1); // the whole stream at an odd offset
      const stream = backing.subarray(1);
      const d = new FrameDecoder();
      const messages = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(messages).toHaveLength(1);
      expect([...(decodeMessage(messages[0]!) as typeof value).f]).toEqual([0.1, 0.2, 0.3]);
    }
  });

  it('Buffer stays a Buffer, Uint8Array stays a Uint8Array', () => {
    const out = roundTrip({ b: Buffer.from('xyz'), u: new Uint8Array([1]) });
    expect(Buffer.isBuffer(out.b)).toBe(true);
    expect(out.b.toString()).toBe('xyz');
    expect(protoOf(out.u)).toBe(Uint8Array.prototype);
  });

  it('DataView and ArrayBuffer', () => {
    const ab = new Uint8Array([1, 2, 3, 4]).buffer;
    const dv = new DataView(new Uint8Array([5, 6, 7, 8]).buffer, 1, 2);
    const out = roundTrip({ ab, dv });
    expect(protoOf(out.ab)).toBe(ArrayBuffer.prototype);
    expect([...new Uint8Array(out.ab)]).toEqual([1, 2, 3, 4]);
    expect(protoOf(out.dv)).toBe(DataView.prototype);
    expect(out.dv.byteLength).toBe(2);
    expect(out.dv.getUint8(0)).toBe(6);
  });

  it('empty binary values', () => {
    const out = roundTrip([Buffer.alloc(0), new Float32Array(0), new ArrayBuffer(0)] as const);
    expect(Buffer.isBuffer(out[0])).toBe(true);
    expect(out[1]).toBeInstanceOf(Float32Array);
    expect(out[2].byteLength).toBe(0);
  });

  it('Map with non-string keys and nested special values', () => {
    const key = { id: 1 };
    const map = new Map<unknown, unknown>([
      [1, 'one'],
      ['1', 'string one'],
      [key, new Set([Buffer.from('s')])],
      [10n, new Date(5)],
      [undefined, null],
      [new Uint16Array([7]), new Map([['inner', [1, undefined]]])],
    ]);
    const out = roundTrip({ map }).map;
    expect(out).toBeInstanceOf(Map);
    const entries = [...out];
    expect(entries[0]).toEqual([1, 'one']);
    expect(entries[1]).toEqual(['1', 'string one']);
    expect(entries[2]![0]).toEqual({ id: 1 });
    expect(entries[2]![1]).toBeInstanceOf(Set);
    expect(Buffer.isBuffer([...(entries[2]![1] as Set<Buffer>)][0])).toBe(true);
    expect(entries[3]).toEqual([10n, new Date(5)]);
    expect(entries[4]).toEqual([undefined, null]);
    expect(entries[5]![0]).toBeInstanceOf(Uint16Array);
    const inner = entries[5]![1] as Map<string, unknown[]>;
    expect(inner.get('inner')).toEqual([1, undefined]);
    expect(inner.get('inner')!.length).toBe(2);
  });

  it('Set, Date (also invalid), BigInt (also huge and negative)', () => {
    const out = roundTrip([new Set([1, 'a', null]), new Date(Date.UTC(2020, 0, 1)), new Date(NaN), -(2n ** 200n), 0n]);
    expect(out[0]).toEqual(new Set([1, 'a', null]));
    expect((out[1] as Date).toISOString()).toBe('2020-01-01T00:00:00.000Z');
    expect(Number.isNaN((out[2] as Date).getTime())).toBe(true);
    expect(out[3]).toBe(-(2n ** 200n));
    expect(out[4]).toBe(0n);
  });

  it('undefined as a property, array element, hole and whole message', () => {
    const out = roundTrip({ a: undefined, list: [undefined, 1, , 3] }); // eslint-disable-line no-sparse-arrays
    expect(Object.keys(out)).toEqual(['a', 'list']);
    expect(out.a).toBeUndefined();
    expect(out.list).toHaveLength(4);
    expect(2 in out.list).toBe(true); // a hole comes back as an undefined element
    expect(roundTrip(undefined)).toBeUndefined();
  });

  it('-0, NaN and infinities', () => {
    const out = roundTrip([-0, 0, NaN, Infinity, -Infinity, 2 ** 53 + 2, -(2 ** 63), 1.5]);
    expect(Object.is(out[0], -0)).toBe(true);
    expect(Object.is(out[1], 0)).toBe(true);
    expect(out.slice(2)).toEqual([NaN, Infinity, -Infinity, 2 ** 53 + 2, -(2 ** 63), 1.5]);
    expect(encodeMessage(-0)).toHaveLength(1); // stays in frame 0
  });

  it('Errors with name, message, stack, cause and custom properties', () => {
    const cause = new RangeError('inner');
    const error = Object.assign(new TypeError('outer', { cause }), { code: 'E_X', data: Buffer.from('d') });
    const out = roundTrip({ error }).error as TypeError & { code: string; data: Buffer };
    expect(out).toBeInstanceOf(TypeError);
    expect(out.message).toBe('outer');
    expect(out.stack).toBe(error.stack);
    expect(out.cause).toBeInstanceOf(RangeError);
    expect((out.cause as Error).message).toBe('inner');
    expect(out.code).toBe('E_X');
    expect(Buffer.isBuffer(out.data)).toBe(true);
    expect(Object.keys(out)).toEqual(['code', 'data']);
  });

  it('user error classes come back as Error with their name', () => {
    class MyError extends Error {
      override name = 'MyError';
      readonly detail = 42;
    }
    const out = roundTrip(new MyError('boom')) as Error & { detail: number };
    expect(out).toBeInstanceOf(Error);
    expect(out.name).toBe('MyError');
    expect(out.message).toBe('boom');
    expect(out.detail).toBe(42);
  });

  it('AggregateError keeps its errors', () => {
    const out = roundTrip(new AggregateError([new Error('a'), 1], 'many')) as AggregateError;
    expect(out).toBeInstanceOf(AggregateError);
    expect(out.errors[0]).toBeInstanceOf(Error);
    expect(out.errors[1]).toBe(1);
  });

  it('deeply nested mixtures', () => {
    const value = { a: [new Map([[1, [new Set([new Int8Array([1])])]]])], b: { c: [undefined, 5n, { d: new Date(1) }] } };
    const out = roundTrip(value);
    expect(out).toEqual(value);
    const inner = [...(out.a[0]!.get(1)![0] as Set<Int8Array>)][0];
    expect(inner).toBeInstanceOf(Int8Array);
  });

  it('the same buffer referenced twice is sent twice and decoded as two values', () => {
    const b = Buffer.from('same');
    const frames = encodeMessage([b, b]);
    expect(frames).toHaveLength(5);
    const out = decodeMessage(frames) as Buffer[];
    expect(out[0]!.toString()).toBe('same');
    expect(out[1]!.toString()).toBe('same');
  });
});
