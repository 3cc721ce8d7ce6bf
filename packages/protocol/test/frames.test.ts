import { FrameDecoder, FrameLimitError, ProtocolError, packFrames, unpackFrames, encodePrelude } from '../src';

const enc = (s: string) => new TextEncoder().encode(s);

describe('frames', () => {
  const frames = [enc('hello'), new Uint8Array(0), enc('a longer frame of bytes'), new Uint8Array([0, 255, 7])];
  const packed = packFrames(frames);

  test('layout is count, lengths, frames, little-endian uint64', () => {
    const view = new DataView(packed.buffer);
    expect(view.getBigUint64(0, true)).toBe(4n);
    expect(view.getBigUint64(8, true)).toBe(5n);
    expect(view.getBigUint64(16, true)).toBe(0n);
    expect(packed.byteLength).toBe(8 * 5 + 5 + 0 + 23 + 3);
    expect(encodePrelude(frames)).toEqual(packed.subarray(0, 40));
  });

  test('round-trips whole', () => {
    expect(unpackFrames(packed)).toEqual(frames);
  });

  test('decodes fed one byte at a time', () => {
    const d = new FrameDecoder();
    const out: Uint8Array[][] = [];
    for (let i = 0; i < packed.byteLength; i++) out.push(...d.push(packed.subarray(i, i + 1)));
    expect(out).toEqual([frames]);
    expect(d.bufferedBytes).toBe(0);
  });

  test('decodes split at every offset, with two messages back to back', () => {
    const two = new Uint8Array(packed.byteLength * 2);
    two.set(packed, 0);
    two.set(packed, packed.byteLength);
    for (let cut = 0; cut <= two.byteLength; cut++) {
      const d = new FrameDecoder();
      const out = [...d.push(two.subarray(0, cut)), ...d.push(two.subarray(cut))];
      expect(out).toEqual([frames, frames]);
    }
  });

  test('an empty message (zero frames) round-trips', () => {
    expect(unpackFrames(packFrames([]))).toEqual([]);
  });

  test('truncated and trailing bytes are protocol errors', () => {
    expect(() => unpackFrames(packed.subarray(0, packed.byteLength - 1))).toThrow(ProtocolError);
    expect(() => unpackFrames(packed.subarray(0, 3))).toThrow(/truncated/);
    const extra = new Uint8Array(packed.byteLength + 1);
    extra.set(packed);
    expect(() => unpackFrames(extra)).toThrow(/trailing/);
  });

  test('announced sizes over the limits are refused before allocation', () => {
    const huge = new Uint8Array(16);
    const v = new DataView(huge.buffer);
    v.setBigUint64(0, 1n, true);
    v.setBigUint64(8, 2n ** 62n, true);
    const d = new FrameDecoder();
    expect(() => d.push(huge)).toThrow(FrameLimitError);
    const manyFrames = new Uint8Array(8);
    new DataView(manyFrames.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(() => new FrameDecoder().push(manyFrames)).toThrow(/frame count/);
    expect(() => new FrameDecoder({ maxMessageBytes: 100 }).push(packFrames([new Uint8Array(200)]))).toThrow(FrameLimitError);
    expect(() => new FrameDecoder({ maxFrames: 2 }).push(packed)).toThrow(FrameLimitError);
  });

  test('errors carry stable codes and work with instanceof', () => {
    try {
      unpackFrames(new Uint8Array(3));
      throw new Error('unreachable');
    } catch (e) {
      expect(e).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).code).toBe('DD_ERR_PROTOCOL');
      expect((e as Error).name).toBe('ProtocolError');
    }
  });
});
