import { createHash } from 'node:crypto';
import { md5Hex, pureMd5Hex } from '../src/digest';

describe('md5', () => {
  it('pure implementation equals node:crypto for lengths around block boundaries', () => {
    let seed = 1;
    for (let length = 0; length < 300; length++) {
      const data = new Uint8Array(length);
      for (let i = 0; i < length; i++) data[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      const expected = createHash('md5').update(data).digest('hex');
      expect(pureMd5Hex(data)).toBe(expected);
      expect(md5Hex(data)).toBe(expected);
    }
  });

  it('matches the RFC 1321 test suite', () => {
    const text = (s: string) => new TextEncoder().encode(s);
    expect(pureMd5Hex(text(''))).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(pureMd5Hex(text('abc'))).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(pureMd5Hex(text('12345678901234567890123456789012345678901234567890123456789012345678901234567890'))).toBe('57edf4a22be3c955ac49da2e2107b67a');
  });
});
