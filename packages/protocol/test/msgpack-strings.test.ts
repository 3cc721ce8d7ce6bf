// The encoder's short-string fast path (msgpack-codec.ts) and dd's decoder (msgpack-decoder.ts)
// give the library's bytes and strings exactly: ASCII and not, at the lengths where the header
// and the path change.
import { Encoder, decode } from '@msgpack/msgpack';
import { decodeMessage, encodeMessage } from '../src';

const library = new Encoder();

function strings(): string[] {
  const out: string[] = [];
  for (const n of [0, 1, 15, 16, 17, 31, 32, 33, 49, 50, 51, 63, 200, 255, 256, 300]) {
    out.push('k'.repeat(n));
    if (n > 0) {
      for (const odd of ['é', '€', '😀', '\u007f', '\u0080', '\ud800', '\0']) {
        out.push(odd + 'a'.repeat(n - 1), 'a'.repeat(n - 1) + odd, 'a'.repeat(n >> 1) + odd + 'a'.repeat(n >> 1));
      }
    }
  }
  return out;
}

test('strings as values and as map keys encode to the library bytes and decode back', () => {
  for (const s of strings()) {
    for (const value of [s, { [s]: s, op: s }, [s, 1, s]]) {
      const frames = encodeMessage(value);
      expect(frames).toHaveLength(1);
      expect(Buffer.from(frames[0]!).equals(Buffer.from(library.encode(value)))).toBe(true);
      expect(decodeMessage(frames)).toEqual(decode(library.encode(value)));
      // Also out of a Node Buffer at an odd offset (socket chunks).
      const chunk = Buffer.concat([Buffer.from([7]), Buffer.from(frames[0]!)]).subarray(1);
      expect(decodeMessage([chunk])).toEqual(decode(library.encode(value)));
    }
  }
});

test('a string cut short by the end of the frame is still an error', () => {
  const bytes = encodeMessage({ key: 'inc-0123456789abcdef0123456789' })[0]!;
  expect(() => decodeMessage([bytes.subarray(0, bytes.length - 3)])).toThrow(/not valid msgpack/);
});
