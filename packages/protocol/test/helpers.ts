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
