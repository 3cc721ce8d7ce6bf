import { decode } from '@msgpack/msgpack';
import { compressSync } from 'lz4-napi';
import { availableCompressions, decodeMessage, DeserializationError, encodeMessage, MIN_COMPRESS_BYTES, registerCompression, SerializationError } from '../src';
import { randomBytes } from './helpers';

interface Header { compression: (string | null)[]; lengths?: number[]; count: number }

describe('lz4 compression', () => {
  it('is available in Node', () => {
    expect(availableCompressions()).toContain('lz4');
  });

  it('compresses large compressible frames and records it per frame', () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog. '.repeat(2000));
    const noise = randomBytes(20_000, 3);
    const small = Buffer.from('x'.repeat(MIN_COMPRESS_BYTES));
    const frames = encodeMessage({ text, noise, small }, { compression: 'lz4' });
    const headers = [1, 3, 5].map((i) => decode(frames[i]!) as Header);
    expect(headers[0]).toMatchObject({ compression: ['lz4'], lengths: [text.byteLength] });
    expect(frames[2]!.byteLength).toBeLessThan(text.byteLength / 10);
    expect(headers[1]).toMatchObject({ compression: [null] }); // incompressible
    expect(headers[1]!.lengths).toBeUndefined();
    expect(frames[4]!.buffer).toBe(noise.buffer); // and still not copied
    expect(headers[2]).toMatchObject({ compression: [null] }); // not over 1 KiB
    const out = decodeMessage(frames) as { text: Buffer; noise: Uint8Array; small: Buffer };
    expect(out.text.equals(text)).toBe(true);
    expect(out.noise).toEqual(noise);
    expect(Buffer.isBuffer(out.small)).toBe(true);
  });

  it('is off by default', () => {
    const frames = encodeMessage(Buffer.alloc(100_000));
    expect((decode(frames[1]!) as Header).compression).toEqual([null]);
  });

  it('samples large frames: a compressible head does not make noise compressed', () => {
    const frame = randomBytes(1_000_000, 9);
    frame.fill(0, 0, 10_000); // only the first sample slice compresses
    const frames = encodeMessage(frame, { compression: 'lz4' });
    expect((decode(frames[1]!) as Header).compression).toEqual([null]);
  });

  it('compresses split pieces independently', () => {
    const data = Buffer.alloc(50_000, 1);
    const frames = encodeMessage(data, { compression: 'lz4', splitSize: 20_000 });
    const header = decode(frames[1]!) as Header;
    expect(header.compression).toEqual(['lz4', 'lz4', 'lz4']);
    expect(header.lengths).toEqual([20_000, 20_000, 10_000]);
    expect((decodeMessage(frames) as Buffer).equals(data)).toBe(true);
  });

  it('refuses an unknown compression when encoding', () => {
    expect(() => encodeMessage(1, { compression: 'zstd-unknown' })).toThrow(SerializationError);
  });

  it('accepts a registered codec (the hook other runtimes use)', () => {
    registerCompression('reverse-test', {
      maxExpansion: 1,
      compress: (data) => Uint8Array.from(data.subarray(0, 100)).reverse(), // "compresses" to 100 bytes
      decompress: () => new Uint8Array(5000),
    });
    const frames = encodeMessage(Buffer.alloc(5000), { compression: 'reverse-test' });
    expect((decode(frames[1]!) as Header).compression).toEqual(['reverse-test']);
    expect(() => decodeMessage(frames)).toThrow(DeserializationError); // 100 bytes cannot hold 5000 at ratio 1
  });

  describe('a lying peer', () => {
    const data = Buffer.alloc(10_000, 42);
    function tampered(edit: (header: Header, frames: Uint8Array[]) => void): Uint8Array[] {
      const frames = encodeMessage(data, { compression: 'lz4' });
      const header = decode(frames[1]!) as Header;
      edit(header, frames);
      const { encode } = jest.requireActual<typeof import('@msgpack/msgpack')>('@msgpack/msgpack');
      frames[1] = encode(header);
      return frames;
    }

    it('claims a larger decompressed size in the sub-header', () => {
      expect(() => decodeMessage(tampered((h) => { h.lengths = [20_000]; }))).toThrow(DeserializationError);
    });

    it('claims a smaller decompressed size', () => {
      expect(() => decodeMessage(tampered((h) => { h.lengths = [5_000]; }))).toThrow(DeserializationError);
    });

    it('claims an absurd size (never allocated)', () => {
      expect(() => decodeMessage(tampered((h) => { h.lengths = [2 ** 40]; }))).toThrow(DeserializationError);
    });

    it('sends a consistent but too large payload for the decoder limit', () => {
      const frames = encodeMessage(data, { compression: 'lz4' });
      expect(() => decodeMessage(frames, { maxDecompressedBytes: 9_999 })).toThrow(/limit/);
      expect(decodeMessage(frames, { maxDecompressedBytes: 10_000 })).toEqual(data);
    });

    it('sends corrupt lz4 data', () => {
      expect(() => decodeMessage(tampered((_h, f) => { f[2] = Uint8Array.from(f[2]!).fill(0xff, 4); }))).toThrow(DeserializationError);
      expect(() => decodeMessage(tampered((_h, f) => { f[2] = f[2]!.subarray(0, 3); }))).toThrow(DeserializationError);
      expect(() => decodeMessage(tampered((_h, f) => { f[2] = f[2]!.subarray(0, f[2]!.byteLength - 2); }))).toThrow(DeserializationError);
    });

    it('sends compressed frames without lengths', () => {
      expect(() => decodeMessage(tampered((h) => { delete h.lengths; }))).toThrow(DeserializationError);
    });

    it('sends an lz4 frame whose size prefix disagrees with the sub-header', () => {
      const other = compressSync(Buffer.alloc(20_000, 42));
      expect(() => decodeMessage(tampered((_h, f) => { f[2] = other; }))).toThrow(DeserializationError);
    });
  });
});
