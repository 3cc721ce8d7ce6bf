import { decode } from '@msgpack/msgpack';
import { decodeMessage, encodeMessage, packFrames, SerializationError, toSerialize, unpackFrames, PLACEHOLDER_KEY } from '../src';
import { randomBytes, roundTrip } from './helpers';

describe('encodeMessage / decodeMessage', () => {
  it('keeps a plain message in one msgpack frame', () => {
    const msg = { op: 'task-finished', key: 'inc-abc', nbytes: 8, nested: [1, 'two', { three: 3.5 }], flag: true, nothing: null };
    const frames = encodeMessage(msg);
    expect(frames).toHaveLength(1);
    expect(decode(frames[0]!)).toEqual(msg); // frame 0 is ordinary msgpack
    expect(decodeMessage(frames)).toEqual(msg);
  });

  it('round-trips unicode strings and empty containers', () => {
    const msg = { '': '', 'ключ': 'значение ☃ 𝄞 日本語', empty: {}, list: [], nested: [[[]]] };
    expect(roundTrip(msg)).toEqual(msg);
    expect(roundTrip({})).toEqual({});
    expect(roundTrip(null)).toBeNull();
    expect(roundTrip('')).toBe('');
  });

  it('writes placeholders and sub-headers in the documented layout', () => {
    const frames = encodeMessage({ op: 'x', data: Buffer.from('abc') });
    expect(frames).toHaveLength(3);
    expect(decode(frames[0]!)).toEqual({ op: 'x', data: { [PLACEHOLDER_KEY]: 1 } });
    expect(decode(frames[1]!)).toEqual({ serializer: 'dd', compression: [null], count: 1, type: 'Buffer' });
    expect(Buffer.from(frames[2]!).toString()).toBe('abc');
  });

  it('takes Buffers and typed arrays out of band without copying them', () => {
    const big = Buffer.alloc(4096, 7);
    const floats = new Float64Array(100).subarray(10, 20);
    const frames = encodeMessage({ op: 'data', big, floats });
    expect(frames).toHaveLength(5);
    expect(frames[2]!.buffer).toBe(big.buffer);
    expect(frames[2]!.byteOffset).toBe(big.byteOffset);
    expect(frames[4]!.buffer).toBe(floats.buffer);
    expect(frames[4]!.byteOffset).toBe(floats.byteOffset);
    expect(frames[4]!.byteLength).toBe(80);
    big[0] = 1; // shared memory: the frame sees the change
    expect(frames[2]![0]).toBe(1);
  });

  it('decodes a Buffer as a view of the received frame', () => {
    const frames = encodeMessage(Buffer.alloc(1000, 3));
    const packed = packFrames(frames);
    const out = decodeMessage(unpackFrames(packed)) as Buffer;
    expect(out.buffer).toBe(packed.buffer);
  });

  it('splits frames larger than splitSize and joins them again', () => {
    const data = randomBytes(10_000, 7);
    const frames = encodeMessage({ data }, { splitSize: 3000 });
    expect(frames).toHaveLength(2 + 4);
    expect(decode(frames[1]!)).toEqual({ serializer: 'dd', compression: [null, null, null, null], count: 4, splits: [4], type: 'Uint8Array' });
    expect(frames.slice(2).map((f) => f.byteLength)).toEqual([3000, 3000, 3000, 1000]);
    expect(frames[3]!.buffer).toBe(data.buffer); // pieces are views too
    const out = decodeMessage(unpackFrames(packFrames(frames))) as { data: Uint8Array };
    expect(out.data).toEqual(data);
  });

  it('records splits per frame when only some frames of a payload are split', () => {
    const value = new Map([['a', Buffer.from(randomBytes(10, 1))], ['b', randomBytes(25_000, 2)]]); // a Buffer: a small Uint8Array would travel inline
    const frames = encodeMessage(value, { splitSize: 10_000 });
    const header = decode(frames[1]!) as { splits: number[]; count: number };
    // The Map's nested message: frame 0, then per value a sub-header and its bytes.
    expect(header.splits).toEqual([1, 1, 1, 1, 3]);
    expect(header.count).toBe(7);
    expect(decodeMessage(frames)).toEqual(value);
  });

  it('Serialize sends plain data out of band with the msgpack family', () => {
    const payload = { rows: Array.from({ length: 100 }, (_, i) => ({ i, name: `row-${i}` })) };
    const frames = encodeMessage({ op: 'x', payload: toSerialize(payload) });
    expect(frames).toHaveLength(3);
    expect(decode(frames[1]!)).toEqual({ serializer: 'msgpack', compression: [null], count: 1 });
    expect(decodeMessage(frames)).toEqual({ op: 'x', payload });
  });

  it('Serialize can pick the family', () => {
    const frames = encodeMessage(toSerialize(new Map([[1, 2]]), ['dd']));
    expect((decode(frames[1]!) as { serializer: string }).serializer).toBe('dd');
    expect(decodeMessage(frames)).toEqual(new Map([[1, 2]]));
  });

  it('refuses what no family can serialize, with SerializationError', () => {
    class Unregistered {
      x = 1;
    }
    expect(() => encodeMessage({ v: new Unregistered() })).toThrow(SerializationError);
    expect(() => encodeMessage({ f: () => 1 })).toThrow(SerializationError);
    expect(() => encodeMessage({ s: Symbol('s') })).toThrow(SerializationError);
    expect(() => encodeMessage({ [PLACEHOLDER_KEY]: 1 })).toThrow(SerializationError);
    expect(() => encodeMessage({}, { serializers: ['nope'] })).not.toThrow(); // plain: no family needed
    expect(() => encodeMessage(1n, { serializers: ['nope'] })).toThrow(SerializationError);
  });

  it('refuses cycles with SerializationError', () => {
    const a: unknown[] = [];
    a.push(a);
    expect(() => encodeMessage(a)).toThrow(SerializationError);
    const m = new Map<string, unknown>();
    m.set('self', m);
    expect(() => encodeMessage(m)).toThrow(SerializationError);
  });

  it('is reentrant: a class serializer may itself call encodeMessage', () => {
    // Exercised through Map-in-Map nesting, which encodes nested messages mid-encoding.
    const value = { outer: new Map([['inner', new Map([['x', Buffer.from('y')]])]]) };
    expect(roundTrip(value)).toEqual(value);
  });

  it('is deterministic', () => {
    const make = () => ({ op: 'x', a: new Map([[1, new Set([2n])]]), b: new Float32Array([1, 2]), c: undefined, e: new Date(0) });
    const one = packFrames(encodeMessage(make(), { compression: 'lz4' }));
    const two = packFrames(encodeMessage(make(), { compression: 'lz4' }));
    expect(Buffer.from(one).equals(Buffer.from(two))).toBe(true);
  });
});
