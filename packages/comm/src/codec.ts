// Message <-> frames, through @dd/protocol. Kept in one place so every byte-oriented transport
// encodes the same way and turns decoder failures into the same named errors.

import { DdError, DeserializationError, decodeMessage, encodeMessage, type DecodeOptions, type EncodeOptions } from '@dd/protocol';
import type { Compression } from './comm';

// protocol compiles options once per options object (WeakMap), so pass the same objects every time.
const LZ4_ENCODING: EncodeOptions = Object.freeze({ compression: 'lz4' });

export function encodeFrames(msg: unknown, compression: Compression): Uint8Array[] {
  return encodeMessage(msg, compression === 'lz4' ? LZ4_ENCODING : undefined);
}

/**
 * Decodes one message; any failure becomes a DeserializationError (a ProtocolError).
 * `options` should be one object per comm (it carries the comm's limits).
 */
export function decodeFrames(frames: Uint8Array[], options?: DecodeOptions): unknown {
  try {
    return decodeMessage(frames, options);
  } catch (err) {
    if (err instanceof DdError) throw err;
    throw new DeserializationError(`cannot decode message: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
