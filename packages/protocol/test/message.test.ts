import { decodeMessage, encodeMessage, packFrames, unpackFrames } from '../src';

describe('encodeMessage / decodeMessage', () => {
  it('keeps a plain message in one msgpack frame', () => {
    const msg = { op: 'task-finished', key: 'inc-abc', nbytes: 8, nested: [1, 'two', { three: 3.5 }], flag: true, nothing: null };
    const frames = encodeMessage(msg);
    expect(frames).toHaveLength(1);
    expect(decodeMessage(frames)).toEqual(msg);
  });

  it('takes Buffers and Uint8Arrays out of band without copying them', () => {
    const big = Buffer.alloc(4096, 7);
    const bytes = new Uint8Array([1, 2, 3]);
    const frames = encodeMessage({ op: 'data', big, bytes });
    expect(frames).toHaveLength(5);
    expect(frames[2]!.buffer).toBe(big.buffer);
    expect(frames[2]!.byteOffset).toBe(big.byteOffset);
    const out = decodeMessage(unpackFrames(packFrames(frames))) as { big: Buffer; bytes: Uint8Array };
    expect(Buffer.isBuffer(out.big)).toBe(true);
    expect(out.big.equals(big)).toBe(true);
    expect(Object.getPrototypeOf(out.bytes)).toBe(Uint8Array.prototype);
    expect([...out.bytes]).toEqual([1, 2, 3]);
  });
});
