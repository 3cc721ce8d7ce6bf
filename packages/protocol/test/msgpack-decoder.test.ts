// dd's own msgpack decoder (msgpack-decoder.ts) must return what the library's decoder returns,
// and fail where it fails: checked on generated values, every truncation of them, and the input
// it leaves to the library (extension types, non-ASCII strings).
import { isDeepStrictEqual } from 'node:util';
import { Decoder, Encoder, ExtData } from '@msgpack/msgpack';
import { decodeMsgpack } from '../src/msgpack-codec';
import { DeserializationError } from '../src';
import { randomMsgpackValue, seededRandom } from './helpers';

const library = new Encoder();
const libraryDecode = (bytes: Uint8Array): unknown => new Decoder().decode(bytes);

test('returns what the library returns, for generated values', () => {
  const r = seededRandom(20261123);
  for (let i = 0; i < 400; i++) {
    const value = randomMsgpackValue(r, 0);
    const bytes = library.encode(value);
    // (isDeepStrictEqual: jest's toEqual takes seconds over long arrays and buffers)
    const ours = decodeMsgpack(bytes, 'value');
    const theirs = libraryDecode(bytes);
    if (!isDeepStrictEqual(ours, theirs)) expect(ours).toEqual(theirs);
  }
});

test('every truncation and every extra byte is a DeserializationError', () => {
  const r = seededRandom(7);
  for (let i = 0; i < 40; i++) {
    // small values only: each of the n cuts decodes up to n bytes
    const small = JSON.stringify(randomMsgpackValue(r, 3)).slice(0, 200);
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
