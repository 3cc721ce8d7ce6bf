import { decode, encode } from '@msgpack/msgpack';
import {
  decodeMessage, DeserializationError, encodeMessage, FrameLimitError, packFrames, ProtocolError, unpackFrames,
  UnknownSerializerError,
} from '../src';
import { randomBytes } from './helpers';

function expectProtocolErrorOrValue(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw new Error(`leaked ${String(error)}`, { cause: error });
  }
}

const sample = () => encodeMessage({ op: 'x', b: Buffer.from('abc'), m: new Map([[1, new Int16Array([1, 2])]]), u: undefined, d: new Date(0) });

describe('decodeMessage on bad input', () => {
  it('garbled frame 0', () => {
    expect(() => decodeMessage([new Uint8Array([0xc1])])).toThrow(DeserializationError); // never-used type byte
    expect(() => decodeMessage([new Uint8Array([0x92, 0x01])])).toThrow(DeserializationError); // truncated array
    expect(() => decodeMessage([new Uint8Array([0x01, 0x02])])).toThrow(DeserializationError); // trailing byte
    expect(() => decodeMessage([new Uint8Array(0)])).toThrow(DeserializationError);
    expect(() => decodeMessage([])).toThrow(DeserializationError);
  });

  it('a claimed huge array or map length', () => {
    expect(() => decodeMessage([new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])])).toThrow(DeserializationError);
    expect(() => decodeMessage([new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff])])).toThrow(DeserializationError);
    expect(() => decodeMessage([new Uint8Array([0xc6, 0xff, 0xff, 0xff, 0xff])])).toThrow(DeserializationError);
  });

  it('a __proto__ key', () => {
    expect(() => decodeMessage([new Uint8Array([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01])])).toThrow(DeserializationError);
  });

  it('placeholders that point nowhere, twice, or into sub-frames', () => {
    const sub = [encode({ serializer: 'dd', compression: [null], count: 1, type: 'Buffer' }), new Uint8Array(3)];
    expect(() => decodeMessage([encode({ a: { __Serialized__: 5 } }), ...sub])).toThrow(DeserializationError);
    expect(() => decodeMessage([encode({ a: { __Serialized__: 2 } }), ...sub])).toThrow(DeserializationError);
    expect(() => decodeMessage([encode([{ __Serialized__: 1 }, { __Serialized__: 1 }]), ...sub])).toThrow(/twice/);
    expect(() => decodeMessage([encode({ a: { __Serialized__: 'x' } }), ...sub])).toThrow(DeserializationError);
    expect(() => decodeMessage([encode({ a: { __Serialized__: 1, extra: 1 } }), ...sub])).toThrow(DeserializationError);
    expect(() => decodeMessage([encode({ a: 1 }), ...sub])).toThrow(/not referenced/);
  });

  it('sub-headers that do not match their frames', () => {
    const cases: unknown[] = [
      [1, 2],
      { compression: [null], count: 1, type: 'Buffer' },
      { serializer: 'dd', compression: [null], count: 2, type: 'Buffer' },
      { serializer: 'dd', compression: [], count: 1, type: 'Buffer' },
      { serializer: 'dd', compression: [null], count: -1, type: 'Buffer' },
      { serializer: 'dd', compression: [7], count: 1, type: 'Buffer' },
      { serializer: 'dd', compression: [null], count: 1, lengths: [4], type: 'Buffer' },
      { serializer: 'dd', compression: [null], count: 1, splits: [2], type: 'Buffer' },
      { serializer: 'dd', compression: [null], count: 1, splits: [0, 1], type: 'Buffer' },
      { serializer: 'dd', compression: ['snappy'], count: 1, lengths: [3], type: 'Buffer' },
      { serializer: 'dd', compression: [null], count: 1, type: 'NoSuchType' },
      { serializer: 'dd', compression: [null], count: 1, type: 'Float64Array' },
      { serializer: 'dd', compression: [null], count: 1 },
      { serializer: 'dd', compression: [null], count: 1, type: 'Date' },
      { serializer: 'dd', compression: [null], count: 1, type: 'Map' },
      { serializer: 'dd', compression: [null], count: 1, type: 'class', name: 'nobody' },
      { serializer: 'msgpack', compression: [null], count: 1 },
    ];
    for (const header of cases) {
      const frames = [encode({ __Serialized__: 1 }), encode(header), new Uint8Array([1, 2, 3])];
      expect(() => decodeMessage(frames)).toThrow(DeserializationError);
    }
    const bigint = [encode({ __Serialized__: 1 }), encode({ serializer: 'dd', compression: [], count: 0, type: 'BigInt', value: '12x' })];
    expect(() => decodeMessage(bigint)).toThrow(DeserializationError);
  });

  it('an unknown serializer name', () => {
    const frames = [encode({ __Serialized__: 1 }), encode({ serializer: 'pickle', compression: [], count: 0 })];
    expect(() => decodeMessage(frames)).toThrow(UnknownSerializerError);
  });

  it('frame limits', () => {
    const frames = sample();
    expect(() => decodeMessage(frames, { maxFrames: 2 })).toThrow(FrameLimitError);
    expect(() => decodeMessage(frames, { maxFrameBytes: 4 })).toThrow(FrameLimitError);
    expect(() => decodeMessage(frames, { maxMessageBytes: 10 })).toThrow(FrameLimitError);
  });

  it('hostile nesting depth', () => {
    const deep = new Uint8Array(200_000).fill(0x91); // [[[[...
    expectProtocolErrorOrValue(() => decodeMessage([deep, encode({ serializer: 'dd', compression: [], count: 0, type: 'undefined' })]));
    let frames: Uint8Array[] = [encode(null)];
    for (let i = 0; i < 100; i++) frames = [encode({ __Serialized__: 1 }), encode({ serializer: 'dd', compression: frames.map(() => null), count: frames.length, type: 'Set' }), ...frames];
    expect(() => decodeMessage(frames)).toThrow(DeserializationError);
  });

  it('random bytes never leak anything but ProtocolError subclasses (fixed-seed fuzz)', () => {
    const valid = packFrames(sample());
    for (let round = 0; round < 3000; round++) {
      let bytes: Uint8Array;
      if (round % 3 === 0) {
        bytes = randomBytes(1 + (round % 200), round + 1);
      } else {
        // Mutate a valid message: flip a few bytes after the prelude.
        bytes = Uint8Array.from(valid);
        const noise = randomBytes(8, round + 1);
        for (let i = 0; i < 1 + (round % 4); i++) {
          const at = 8 * 6 + ((noise[2 * i]! << 8) | noise[2 * i + 1]!) % (bytes.byteLength - 48);
          bytes[at] = noise[7 - i]!;
        }
      }
      expectProtocolErrorOrValue(() => decodeMessage(unpackFrames(bytes, { maxFrameBytes: 1 << 20, maxMessageBytes: 1 << 20 })));
      // And frames that are random from the start, with a valid frame count.
      if (round % 10 === 0) {
        const f = randomBytes(64, round + 7);
        expectProtocolErrorOrValue(() => decodeMessage([encode({ __Serialized__: 1 }), f.subarray(0, 20), f.subarray(20)]));
      }
    }
  });

  it('every single-byte corruption of a valid sub-header is handled', () => {
    const frames = sample();
    const header = frames[1]!;
    for (let i = 0; i < header.byteLength; i++) {
      for (const v of [0x00, 0xc1, 0xff, 0x7f, 0x90]) {
        const copy = Uint8Array.from(header);
        copy[i] = v;
        expectProtocolErrorOrValue(() => decodeMessage([frames[0]!, copy, ...frames.slice(2)]));
      }
    }
    expect(decode(header)).toMatchObject({ serializer: 'dd' });
  });
});
