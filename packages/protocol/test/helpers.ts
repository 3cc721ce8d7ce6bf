import { decodeMessage, encodeMessage, packFrames, unpackFrames, type DecodeOptions, type EncodeOptions } from '../src';

/** Encodes, packs to wire bytes, unpacks and decodes, as two peers would. */
export function roundTrip<T>(value: T, encode?: EncodeOptions, decode?: DecodeOptions): T {
  return decodeMessage(unpackFrames(packFrames(encodeMessage(value, encode))), decode) as T;
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A deterministic pseudo-random generator in [0, 1) (tests must not depend on luck). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Plain msgpack values of every type dd writes, at every header width: integers of each size and
 * sign, floats, NaN and infinities, ASCII and non-ASCII strings (lone surrogates too) short and
 * long, bin, arrays and maps (null-prototype ones too) at the fix/16/32-bit length boundaries.
 * No -0: dd's encoder writes it as a float64, where the library writes the integer 0.
 */
export function randomMsgpackValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 8 : 10));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2: {
      const bits = [4, 5, 7, 8, 15, 16, 31, 32, 33, 40, 53][Math.floor(r() * 11)]!;
      const n = Math.floor(r() * 2 ** bits) + 1;
      return r() < 0.4 ? -n : n;
    }
    case 3:
      return [(r() - 0.5) * 10 ** Math.floor(r() * 12), NaN, Infinity, -Infinity, 2 ** 60, -(2 ** 60), 0.1][Math.floor(r() * 7)];
    case 4: {
      const n = [0, 1, 5, 16, 17, 31, 32, 50, 51, 60, 255, 256, 300, 70000][Math.floor(r() * 14)]!;
      const alphabet = r() < 0.7 ? 'abcdefghij-_[]0123456789' : 'aé€😀\u0080\ud800\udc00';
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
      return s;
    }
    case 5:
      return Uint8Array.from({ length: [0, 3, 255, 256, 300, 4096][Math.floor(r() * 6)]! }, (_, i) => i & 0xff);
    case 6:
      return [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 32, -(2 ** 31) - 1, 0][Math.floor(r() * 5)];
    case 7:
      return ['op', 'key', 'nbytes', 'stimulusId'][Math.floor(r() * 4)];
    case 8:
      if (r() < 0.03) return Array.from({ length: [16, 65535, 65536][Math.floor(r() * 3)]! }, (_, i) => i * 3);
      return Array.from({ length: Math.floor(r() * 8) }, () => randomMsgpackValue(r, depth + 1));
    default: {
      const out: Record<string, unknown> = r() < 0.1 ? Object.create(null) : {};
      const n = r() < 0.05 ? 17 : Math.floor(r() * 8);
      for (let i = 0; i < n; i++) out[`${String(randomMsgpackValue(r, 99)).slice(0, 40)}${i}`] = randomMsgpackValue(r, depth + 1);
      return out;
    }
  }
}
