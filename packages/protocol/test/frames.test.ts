import {
  FrameDecoder, FrameLimitError, ProtocolError, SHARED_REASSEMBLY_MIN_BYTES, decodeMessage, encodeMessage, encodePrelude, packFrames,
  packFramesInto, packedSize, setSharedReassembly, unpackFrames,
} from '../src';

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

  test('directTarget: bytes written straight into the reassembly buffer complete the message', () => {
    const payload = new Uint8Array(10_000).map((_, i) => i % 251);
    const msg = packFrames([enc('head'), payload, enc('tail')]);
    const second = packFrames([enc('next')]);
    const d = new FrameDecoder();
    expect(d.directTarget).toBeUndefined();
    // Prelude, first frame and a little of the second: reassembly of frames 1..2 begins.
    expect(d.push(msg.subarray(0, 8 * 4 + 4 + 100))).toEqual([]);
    let at = 8 * 4 + 4 + 100;
    const out: Uint8Array[][] = [];
    while (at < msg.byteLength) {
      const target = d.directTarget!;
      expect(target.byteLength).toBe(msg.byteLength - at);
      const n = Math.min(3000, target.byteLength);
      target.set(msg.subarray(at, at + n));
      at += n;
      out.push(...d.pushDirect(n));
    }
    expect(out).toEqual([[enc('head'), payload, enc('tail')]]);
    expect(d.directTarget).toBeUndefined();
    expect(d.partialMessageBytes).toBe(0);
    expect(d.push(second)).toEqual([[enc('next')]]);
    expect(() => d.pushDirect(1)).toThrow(RangeError);
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

  test('packFramesInto writes the packFrames layout into a given buffer at an offset', () => {
    const target = Buffer.alloc(packed.byteLength + 5, 0xee);
    expect(packedSize(frames)).toBe(packed.byteLength);
    expect(packFramesInto(frames, target, 3)).toBe(3 + packed.byteLength);
    expect(new Uint8Array(target.subarray(3, 3 + packed.byteLength))).toEqual(packed);
    expect(target[2]).toBe(0xee);
    expect(target[3 + packed.byteLength]).toBe(0xee);
    expect(() => packFramesInto(frames, new Uint8Array(packed.byteLength - 1))).toThrow(RangeError);
  });

  describe('bad bytes after complete messages in the same chunk', () => {
    // A valid message, then a prelude announcing a frame over the limit.
    const bad = new Uint8Array(16);
    new DataView(bad.buffer).setBigUint64(0, 1n, true);
    new DataView(bad.buffer).setBigUint64(8, 2n ** 40n, true);
    const chunk = new Uint8Array(packed.byteLength * 2 + bad.byteLength);
    chunk.set(packed, 0);
    chunk.set(packed, packed.byteLength);
    chunk.set(bad, packed.byteLength * 2);

    test('push returns the complete messages, records the error, and throws it on every later push', () => {
      const d = new FrameDecoder({ maxFrameBytes: 1 << 20 });
      expect(d.push(chunk)).toEqual([frames, frames]);
      expect(d.error).toBeInstanceOf(FrameLimitError);
      expect(() => d.push(new Uint8Array(0))).toThrow(d.error!);
      expect(() => d.push(packed)).toThrow(FrameLimitError);
    });

    test('the same when the messages were already partly buffered (slow path)', () => {
      for (const cut of [1, 8, 17, packed.byteLength + 3]) {
        const d = new FrameDecoder({ maxFrameBytes: 1 << 20 });
        const first = d.push(chunk.subarray(0, cut));
        const rest = d.push(chunk.subarray(cut));
        expect([...first, ...rest]).toEqual([frames, frames]);
        expect(d.error).toBeInstanceOf(FrameLimitError);
      }
    });

    test('push throws at once when no message precedes the bad bytes', () => {
      const d = new FrameDecoder({ maxFrameBytes: 1 << 20 });
      expect(() => d.push(bad)).toThrow(FrameLimitError);
      expect(d.error).toBeInstanceOf(FrameLimitError);
    });

    test('unpackFrames reports the bad prelude, not trailing bytes', () => {
      const one = new Uint8Array(packed.byteLength + bad.byteLength);
      one.set(packed);
      one.set(bad, packed.byteLength);
      expect(() => unpackFrames(one, { maxFrameBytes: 1 << 20 })).toThrow(FrameLimitError);
    });
  });

  test('partialMessageBytes counts the received bytes of the message in progress', () => {
    const d = new FrameDecoder();
    for (let i = 0; i < packed.byteLength; i++) {
      d.push(packed.subarray(i, i + 1));
      expect(d.partialMessageBytes).toBe(i + 1 === packed.byteLength ? 0 : i + 1);
    }
    d.push(packed.subarray(0, 20));
    expect(d.partialMessageBytes).toBe(20);
  });

  test('a message spanning chunks is reassembled into one buffer: its frames are adjacent views, each chunk copied once', () => {
    const d = new FrameDecoder();
    const out: Uint8Array[][] = [];
    for (let i = 0; i < packed.byteLength; i += 7) out.push(...d.push(packed.subarray(i, i + 7)));
    expect(out).toEqual([frames]);
    const got = out[0]!;
    // From the first frame that crossed a chunk boundary on, all frames share one buffer, back to back.
    const shared = got.filter((f) => f.buffer === got[got.length - 1]!.buffer);
    expect(shared.length).toBeGreaterThan(1);
    for (let i = 1; i < shared.length; i++) expect(shared[i]!.byteOffset).toBe(shared[i - 1]!.byteOffset + shared[i - 1]!.byteLength);
  });

  test('a split payload that arrived in chunks is joined without a copy', () => {
    const data = Buffer.alloc(10_000);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const bytes = packFrames(encodeMessage({ data }, { splitSize: 3000 }));
    const d = new FrameDecoder();
    const out: Uint8Array[][] = [];
    for (let i = 0; i < bytes.byteLength; i += 1000) out.push(...d.push(bytes.subarray(i, i + 1000)));
    expect(out.length).toBe(1);
    const got = (decodeMessage(out[0]!) as { data: Buffer }).data;
    expect(got.equals(data)).toBe(true);
    expect(got.buffer).toBe(out[0]![out[0]!.length - 1]!.buffer);
  });

  test('setSharedReassembly(true) reassembles large messages into a SharedArrayBuffer', () => {
    const big = new Uint8Array(SHARED_REASSEMBLY_MIN_BYTES).fill(3);
    const bytes = packFrames([enc('x'), big]);
    const reassemble = () => {
      const d = new FrameDecoder();
      const half = bytes.byteLength >> 1;
      return [...d.push(bytes.subarray(0, half)), ...d.push(bytes.subarray(half))][0]!;
    };
    expect(reassemble()[1]!.buffer).toBeInstanceOf(ArrayBuffer);
    setSharedReassembly(true);
    try {
      const got = reassemble();
      expect(got[1]!.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(got[1]).toEqual(big);
      // Small messages stay in private memory.
      const small = packFrames([enc('small message')]);
      const d = new FrameDecoder();
      expect(d.push(small.subarray(0, 10))).toEqual([]);
      expect(d.push(small.subarray(10))[0]![0]!.buffer).toBeInstanceOf(ArrayBuffer);
    } finally {
      setSharedReassembly(false);
    }
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
