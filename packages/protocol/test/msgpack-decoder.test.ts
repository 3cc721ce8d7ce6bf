// dd's own msgpack decoder (msgpack-decoder.ts) must return what the library's decoder returns,
// and fail where it fails: checked on generated values, every truncation of them, and the input
// it leaves to the library (extension types, non-ASCII strings).
import { isDeepStrictEqual } from 'node:util';
import { Decoder, Encoder, ExtData } from '@msgpack/msgpack';
import { decodeMsgpack } from '../src/msgpack-codec';
import { DeserializationError } from '../src';

const library = new Encoder();
const libraryDecode = (bytes: Uint8Array): unknown => new Decoder().decode(bytes);

/** A deterministic pseudo-random generator (tests must not depend on luck). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 8 : 10));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2: {
      // integers of every width, both signs
      const bits = [4, 7, 8, 15, 16, 31, 32, 40, 53][Math.floor(r() * 9)]!;
      const n = Math.floor(r() * 2 ** bits);
      return r() < 0.3 ? -n : n;
    }
    case 3:
      return (r() - 0.5) * 10 ** Math.floor(r() * 12);
    case 4: {
      const n = [0, 1, 5, 16, 17, 31, 32, 60, 255, 300][Math.floor(r() * 10)]!;
      const alphabet = r() < 0.8 ? 'abcdefghij-_[]0123456789' : 'aé€😀\u0080\ud800';
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
      return s;
    }
    case 5:
      return Uint8Array.from({ length: [0, 3, 300, 70000][Math.floor(r() * 4)]! }, (_, i) => i & 0xff);
    case 6:
      return Number.MAX_SAFE_INTEGER * (r() < 0.5 ? 1 : -1);
    case 7:
      return ['op', 'key', 'nbytes', 'stimulusId'][Math.floor(r() * 4)];
    case 8:
      // now and then a long one (array 16/32 headers), of plain numbers
      if (r() < 0.02) return Array.from({ length: 70000 }, (_, i) => i * 3);
      return Array.from({ length: Math.floor(r() * 8) }, () => randomValue(r, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      const n = Math.floor(r() * 8);
      for (let i = 0; i < n; i++) out[String(randomValue(r, 99))] = randomValue(r, depth + 1);
      return out;
    }
  }
}

test('returns what the library returns, for generated values', () => {
  const r = rng(20261123);
  for (let i = 0; i < 400; i++) {
    const value = randomValue(r, 0);
    const bytes = library.encode(value);
    // (isDeepStrictEqual: jest's toEqual takes seconds over long arrays and buffers)
    const ours = decodeMsgpack(bytes, 'value');
    const theirs = libraryDecode(bytes);
    if (!isDeepStrictEqual(ours, theirs)) expect(ours).toEqual(theirs);
  }
});

test('every truncation and every extra byte is a DeserializationError', () => {
  const r = rng(7);
  for (let i = 0; i < 40; i++) {
    // small values only: each of the n cuts decodes up to n bytes
    const small = JSON.stringify(randomValue(r, 3)).slice(0, 200);
    const bytes = library.encode({ op: 'compute-task', key: `x-${i}`, list: [1, 2.5, -300, 2 ** 40, 'é', null, new Uint8Array(3)], small });
    for (let cut = 0; cut < bytes.byteLength; cut++) {
      expect(() => decodeMsgpack(bytes.subarray(0, cut), 'frame 0')).toThrow(DeserializationError);
    }
    const longer = new Uint8Array(bytes.byteLength + 1);
    longer.set(bytes);
    expect(() => decodeMsgpack(longer, 'frame 0')).toThrow(/Extra 1 of/);
  }
});

test('input it leaves to the library: extension types and non-ASCII strings', () => {
  const date = new Date(1_700_000_000_123);
  const withExt = new Encoder().encode({ when: date, ext: new ExtData(7, new Uint8Array([1, 2])) });
  expect(decodeMsgpack(withExt, 'value')).toEqual(libraryDecode(withExt));
  for (const s of ['\ud800x', 'é'.repeat(150), '\ud800'.repeat(70), '😀']) {
    const bytes = library.encode({ [s]: s, list: [s] });
    expect(decodeMsgpack(bytes, 'value')).toEqual(libraryDecode(bytes));
  }
});

test('refuses what the library refuses: __proto__ keys, other key types, the unused type byte', () => {
  expect(() => decodeMsgpack(library.encode(JSON.parse('{"__proto__": 1}')), 'value')).toThrow(/__proto__/);
  expect(() => decodeMsgpack(new Uint8Array([0x81, 0xc0, 0x01]), 'value')).toThrow(/type of key/); // {null: 1}
  expect(() => decodeMsgpack(new Uint8Array([0xc1]), 'value')).toThrow(DeserializationError);
  // A number key is kept, as the library keeps it.
  expect(decodeMsgpack(new Uint8Array([0x81, 0x07, 0x01]), 'value')).toEqual({ 7: 1 });
});

test('bin out of a Node Buffer is a plain Uint8Array view, as before', () => {
  const chunk = Buffer.concat([Buffer.from([9]), Buffer.from(library.encode({ spec: new Uint8Array([1, 2, 3]) }))]).subarray(1);
  const out = decodeMsgpack(chunk, 'value') as { spec: Uint8Array };
  expect(Object.getPrototypeOf(out.spec)).toBe(Uint8Array.prototype);
  expect([...out.spec]).toEqual([1, 2, 3]);
});
