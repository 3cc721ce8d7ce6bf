// msgpack for dd: the encoder (msgpack-encoder.ts, re-exported here) and its free list, and
// the decoding entry point (decodeMsgpack: dd's own decoder, msgpack-decoder.ts, with
// @msgpack/msgpack for the extension types dd never writes).

import { Decoder } from '@msgpack/msgpack';
import { DeserializationError } from './errors';
import { MessageEncoder } from './msgpack-encoder';
import { MsgpackDecoder, UnsupportedMsgpackType } from './msgpack-decoder';

export {
  describeValue,
  INLINE_BYTES_LIMIT,
  isPlainObject,
  MAX_ENCODE_DEPTH,
  MessageEncoder,
  NotPlainError,
  PLACEHOLDER_KEY,
  type OutOfBandSink,
} from './msgpack-encoder';

// Encoders are stateful, and serializers encode nested messages while an outer encoding is in
// progress, so encoders come from a small free list: one per nesting level in practice.
const freeEncoders: MessageEncoder[] = [];

export function acquireEncoder(): MessageEncoder {
  return freeEncoders.pop() ?? new MessageEncoder();
}

export function releaseEncoder(encoder: MessageEncoder): void {
  if (freeEncoders.length < 8) freeEncoders.push(encoder);
}

/** msgpack of plain data (no out-of-band values); throws NotPlainError otherwise. */
export function encodePlain(value: unknown): Uint8Array {
  const encoder = acquireEncoder();
  try {
    return encoder.encodeValue(value, null);
  } finally {
    releaseEncoder(encoder);
  }
}

interface DecoderLimits {
  maxArrayLength: number;
  maxMapLength: number;
}

/** Placeholder maps ({"__Serialized__": i}) in what decodeMsgpack last returned; -1: not counted. */
let lastPlaceholderMaps = -1;

/**
 * How many maps holding the out-of-band placeholder key the last decodeMsgpack() call decoded
 * (-1 when the library decoded it, which does not count them). Read it right after the call.
 */
export function placeholderMapsInLastDecode(): number {
  return lastPlaceholderMaps;
}

/** dd's decoder (msgpack-decoder.ts); the library's for what it leaves to it. */
const decoder = new MsgpackDecoder();
const libraryDecoder = new Decoder();

/**
 * Decodes one msgpack value that must fill `bytes` exactly. Any failure (truncation, bad type
 * byte, trailing bytes, bad map key) becomes a DeserializationError naming `what`.
 */
export function decodeMsgpack(bytes: Uint8Array, what: string): unknown {
  lastPlaceholderMaps = -1;
  // msgpack bin decodes as a subarray of its input, so out of a Node Buffer (a socket chunk)
  // it would be a Buffer: bin is a Uint8Array on every path. A forwarded Buffer would not
  // travel inline again (isInlineBytes): every compute-task took its spec out of band, a
  // sub-header and two frames more per task, and a Buffer's slice() is a view of its
  // 64 KiB pool, which an executor thread post then copied whole.
  const input = plainBytes(bytes);
  try {
    const value = decoder.decode(input);
    lastPlaceholderMaps = decoder.placeholderMaps;
    return value;
  } catch (error) {
    if (!(error instanceof UnsupportedMsgpackType)) throw notMsgpack(what, error);
    // An extension type (never written by dd): the library's decoding, below.
  }
  // Every array element and map entry takes at least one byte, so no honest length exceeds the
  // frame size; capping here stops a peer from making the decoder pre-size a huge array.
  const limits = libraryDecoder as unknown as DecoderLimits;
  limits.maxArrayLength = input.byteLength;
  limits.maxMapLength = input.byteLength;
  try {
    return libraryDecoder.decode(input);
  } catch (error) {
    throw notMsgpack(what, error);
  }
}

/**
 * decodeMsgpack, with every map of exactly one entry `{[refKey]: <string>}` replaced by
 * `resolve(<string>)` while decoding (`resolved: true`). Input that dd's decoder leaves to the
 * library (extension types) is decoded as decodeMsgpack does, unresolved (`resolved: false`).
 */
export function decodeMsgpackResolving(bytes: Uint8Array, what: string, refKey: string, resolve: (ref: string) => unknown): { value: unknown; resolved: boolean } {
  const input = plainBytes(bytes);
  try {
    const value = decoder.decodeResolving(input, refKey, resolve);
    lastPlaceholderMaps = decoder.placeholderMaps;
    return { value, resolved: true };
  } catch (error) {
    if (!(error instanceof UnsupportedMsgpackType)) throw notMsgpack(what, error);
  }
  return { value: decodeMsgpack(input, what), resolved: false };
}

/** `bytes` as a plain Uint8Array view (see decodeMsgpack: bin must not decode as a Buffer). */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

function notMsgpack(what: string, error: unknown): DeserializationError {
  const reason = error instanceof Error ? error.message : String(error);
  return new DeserializationError(`${what} is not valid msgpack: ${reason}`, { cause: error });
}
