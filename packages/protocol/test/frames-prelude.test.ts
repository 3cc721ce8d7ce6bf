import { encodePrelude, FrameLimitError, packFrames, unpackFrames } from '../src';

function preludeWith(count: bigint, lengths: bigint[]): Uint8Array {
  const out = new Uint8Array(8 * (lengths.length + 1));
  const view = new DataView(out.buffer);
  view.setBigUint64(0, count, true);
  lengths.forEach((n, i) => view.setBigUint64(8 * (i + 1), n, true));
  return out;
}

describe('prelude integers (uint32 halves instead of BigInt)', () => {
  it('writes the same bytes as setBigUint64', () => {
    const frames = [new Uint8Array(0), new Uint8Array(1), new Uint8Array(70_000)];
    expect(encodePrelude(frames)).toEqual(preludeWith(3n, [0n, 1n, 70_000n]));
  });

  it('refuses lengths at and beyond 2^53 and 2^64-1 as limit errors, with the exact number', () => {
    for (const n of [2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]) {
      expect(() => unpackFrames(preludeWith(1n, [n]))).toThrow(FrameLimitError);
      expect(() => unpackFrames(preludeWith(1n, [n]))).toThrow(n.toString());
      expect(() => unpackFrames(preludeWith(n, []))).toThrow(FrameLimitError);
    }
  });

  it('accepts a length exactly at the limit and refuses one above', () => {
    const bytes = packFrames([new Uint8Array(10)]);
    expect(unpackFrames(bytes, { maxFrameBytes: 10 })).toHaveLength(1);
    expect(() => unpackFrames(bytes, { maxFrameBytes: 9 })).toThrow(FrameLimitError);
    // A length above 2^32 is read exactly: within the limits it is merely truncated here.
    expect(() => unpackFrames(preludeWith(1n, [2n ** 32n + 5n]), { maxFrameBytes: 2 ** 33, maxMessageBytes: 2 ** 34 })).toThrow(/truncated/);
  });
});
