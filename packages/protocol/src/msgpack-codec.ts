// msgpack encoding of frame 0 (and of plain sub-frames), built on @msgpack/msgpack, and the
// decoding entry point (decodeMsgpack: dd's own decoder, msgpack-decoder.ts).
//
// The hot path of dd is encoding small plain messages ({op, key, nbytes, ...}). To take
// non-plain values out of band without a separate tree walk, the encoder below replaces the
// library's value dispatch (`doEncode`) with one that writes plain values exactly as the library
// would and hands every other value to an OutOfBandSink, writing the placeholder
// {"__Serialized__": index} in its place. The encoding therefore stays a single pass.
//
// @msgpack/msgpack declares its encoder internals `private`, so the override is installed on
// the prototype through the narrow `EncoderInternals` view below. The package version is
// pinned by package.json (^3) and every behaviour relied on here is covered by tests.

import { Decoder, Encoder } from '@msgpack/msgpack';
import { DeserializationError, SerializationError } from './errors';
import { MsgpackDecoder, UnsupportedMsgpackType } from './msgpack-decoder';

/** Key of the single-entry map that stands in frame 0 for a value taken out of band. */
export const PLACEHOLDER_KEY = '__Serialized__';

/** Receives a value frame 0 cannot hold; returns the frame index of its sub-header. */
export interface OutOfBandSink {
  takeOutOfBand(value: unknown): number;
}

/** Deepest nesting of arrays and objects accepted when encoding (guards against cycles). */
export const MAX_ENCODE_DEPTH = 512;

// The members of @msgpack/msgpack's Encoder this module calls or replaces.
interface EncoderInternals {
  sink: OutOfBandSink | null;
  doEncode(value: unknown, depth: number): void;
  encodeNil(): void;
  encodeBoolean(value: boolean): void;
  encodeNumber(value: number): void;
  encodeString(value: string): void;
  encodeArray(value: readonly unknown[], depth: number): void;
  encodeMap(value: Record<string, unknown>, depth: number): void;
  encodeBinary(value: Uint8Array): void;
  writeU8(value: number): void;
  writeF64(value: number): void;
  ensureBufferSizeToWrite(size: number): void;
  reinitializeState(): void;
  bytes: Uint8Array;
  pos: number;
}

const objectPrototype = Object.prototype;
const hasOwn = Object.hasOwn;

/** True for objects that msgpack maps carry as they are: `{...}` literals and null-prototype objects. */
export function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === objectPrototype || proto === null;
}

/**
 * A msgpack encoder for dd messages. With a sink it takes non-plain values out of band; without
 * one (`sink === null`) it accepts plain values only and throws NotPlainError otherwise.
 */
export class MessageEncoder extends Encoder {
  sink: OutOfBandSink | null = null;

  constructor() {
    // No extension codec: non-plain values never reach the library's own dispatch.
    super({ maxDepth: MAX_ENCODE_DEPTH, initialBufferSize: 1024 });
  }

  /** Encodes `value` into a fresh Uint8Array that the caller owns. */
  encodeValue(value: unknown, sink: OutOfBandSink | null): Uint8Array {
    this.sink = sink;
    try {
      return this.encode(value);
    } finally {
      this.sink = null;
    }
  }

  /**
   * Encodes `value` as if it stood at nesting `depth` of a message and returns a view of this
   * encoder's own buffer (no copy): valid only until the encoder's next use. For callers that
   * copy the bytes into a larger output at once (encodeTaskSpec).
   */
  encodeShared(value: unknown, sink: OutOfBandSink | null, depth: number): Uint8Array {
    const self = this as unknown as EncoderInternals;
    this.sink = sink;
    try {
      self.reinitializeState();
      self.doEncode(value, depth);
      return self.bytes.subarray(0, self.pos);
    } finally {
      this.sink = null;
    }
  }
}

/** Thrown by a MessageEncoder without sink when it meets a value that is not plain msgpack. */
export class NotPlainError extends SerializationError {
  override readonly code: string = 'DD_ERR_NOT_PLAIN';
}

function writePlaceholder(encoder: EncoderInternals, index: number): void {
  encoder.writeU8(0x81); // fixmap with one entry
  encoder.encodeString(PLACEHOLDER_KEY);
  encoder.encodeNumber(index);
}

function takeOutOfBand(encoder: EncoderInternals, value: unknown): void {
  const sink = encoder.sink;
  if (sink === null) {
    throw new NotPlainError(`not plain msgpack data: ${describeValue(value)}`);
  }
  writePlaceholder(encoder, sink.takeOutOfBand(value));
}

// Replaces Encoder#doEncode. Order of checks follows the frequency of types in dd messages.
(MessageEncoder.prototype as unknown as EncoderInternals).doEncode = function doEncode(
  this: EncoderInternals,
  value: unknown,
  depth: number,
): void {
  if (depth > MAX_ENCODE_DEPTH) {
    throw new SerializationError(`message nested deeper than ${MAX_ENCODE_DEPTH} levels (a cycle?)`);
  }
  switch (typeof value) {
    case 'string':
      this.encodeString(value);
      return;
    case 'number':
      // msgpack integers have no negative zero; -0 travels as float64 so it comes back as -0.
      if (value === 0 && 1 / value < 0) {
        this.ensureBufferSizeToWrite(9);
        this.writeU8(0xcb);
        this.writeF64(value);
      } else {
        this.encodeNumber(value);
      }
      return;
    case 'boolean':
      this.encodeBoolean(value);
      return;
    case 'object':
      if (value === null) {
        this.encodeNil();
      } else if (Array.isArray(value)) {
        this.encodeArray(value, depth);
      } else if (isPlainObject(value)) {
        if (hasOwn(value, PLACEHOLDER_KEY)) {
          throw new SerializationError(`the key ${JSON.stringify(PLACEHOLDER_KEY)} is reserved by the dd protocol`);
        }
        this.encodeMap(value as Record<string, unknown>, depth);
      } else if (this.sink !== null && isInlineBytes(value)) {
        // A small Uint8Array (every task spec is one) is written as msgpack bin in frame 0:
        // out of band it cost a sub-header and a frame on encode and a placeholder lookup on
        // decode, ~40% of encoding a compute-task message. Readers return bin as a Uint8Array.
        this.encodeBinary(value as Uint8Array);
      } else {
        takeOutOfBand(this, value);
      }
      return;
    default:
      // undefined, bigint, function, symbol
      takeOutOfBand(this, value);
  }
};

/**
 * Strings up to this many UTF-16 units (and bytes, decoding) take the ASCII fast paths below;
 * longer ones, and any with a non-ASCII character, go through the library as before.
 */
const SHORT_STRING = 50;

const libraryEncodeString = (Encoder.prototype as unknown as EncoderInternals).encodeString;

// Replaces Encoder#encodeString. dd messages are full of short ASCII strings (keys, ops,
// stimulus ids, map keys); the library counts UTF-8 bytes in one pass and writes them in
// another. Here one pass writes them, falling back at the first non-ASCII character. The bytes
// are the same: an ASCII string is its own UTF-8, with the same fixstr/str8 header.
(MessageEncoder.prototype as unknown as EncoderInternals).encodeString = function encodeString(
  this: EncoderInternals,
  value: string,
): void {
  const n = value.length;
  if (n > SHORT_STRING) {
    libraryEncodeString.call(this, value);
    return;
  }
  this.ensureBufferSizeToWrite(2 + n);
  const bytes = this.bytes;
  const start = this.pos;
  let p = n < 32 ? start + 1 : start + 2;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x80) {
      libraryEncodeString.call(this, value); // nothing written yet as far as pos is concerned
      return;
    }
    bytes[p++] = c;
  }
  if (n < 32) {
    bytes[start] = 0xa0 + n; // fixstr
  } else {
    bytes[start] = 0xd9; // str 8
    bytes[start + 1] = n;
  }
  this.pos = p;
};

/** Uint8Arrays up to this size travel inline in frame 0 (msgpack bin) rather than out of band. */
export const INLINE_BYTES_LIMIT = 4096;

const uint8ArrayPrototype = Uint8Array.prototype;

/** Exactly a Uint8Array (not a Buffer or other subclass, whose type must survive) of at most INLINE_BYTES_LIMIT bytes. */
function isInlineBytes(value: object): boolean {
  return Object.getPrototypeOf(value) === uint8ArrayPrototype && (value as Uint8Array).byteLength <= INLINE_BYTES_LIMIT;
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object without constructor';
  }
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  return typeof value;
}

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

/** dd's decoder (msgpack-decoder.ts); the library's for what it leaves to it. */
const decoder = new MsgpackDecoder();
const libraryDecoder = new Decoder();

/**
 * Decodes one msgpack value that must fill `bytes` exactly. Any failure (truncation, bad type
 * byte, trailing bytes, bad map key) becomes a DeserializationError naming `what`.
 */
export function decodeMsgpack(bytes: Uint8Array, what: string): unknown {
  // msgpack bin decodes as a subarray of its input, so out of a Node Buffer (a socket chunk)
  // it would be a Buffer: bin is a Uint8Array on every path. A forwarded Buffer would not
  // travel inline again (isInlineBytes): every compute-task took its spec out of band, a
  // sub-header and two frames more per task, and a Buffer's slice() is a view of its
  // 64 KiB pool, which an executor thread post then copied whole.
  const input = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
  try {
    return decoder.decode(input);
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

function notMsgpack(what: string, error: unknown): DeserializationError {
  const reason = error instanceof Error ? error.message : String(error);
  return new DeserializationError(`${what} is not valid msgpack: ${reason}`, { cause: error });
}
