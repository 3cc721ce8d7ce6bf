// encodeMessage / decodeMessage: a message value <-> a list of frames.
//   frame 0      msgpack of the message; each out-of-band value replaced by
//                {"__Serialized__": index of its sub-header frame}
//   frames 1..   for each out-of-band value in encoding order: sub-header + sub-frames
// A plain message is one msgpack encode on the way out and one decode on the way in.

import { DdError, DeserializationError, FrameLimitError, SerializationError } from './errors';
import type { DecompressionBudget } from './compression';
import {
  compileDecodeOptions,
  compileEncodeOptions,
  type CompiledDecodeOptions,
  type CompiledEncodeOptions,
  type DecodeOptions,
  type EncodeOptions,
} from './message-options';
import { decodeMsgpack, describeValue, isPlainObject, MessageEncoder, PLACEHOLDER_KEY, placeholderMapsInLastDecode, type OutOfBandSink } from './msgpack-codec';
import { appendPayload, readPayloadFrames, readSubHeader } from './out-of-band';
import { familyForDecoding, findFamily, type DeserializeContext, type SerializeContext, type SerializedPayload, type SubHeader } from './serializers/family';
import { Serialize } from './serialize-wrapper';
import './serializers/builtin';

/** Encodes one message into frames (frame 0 first). Out-of-band frames may share memory with `message`. */
export function encodeMessage(message: unknown, options?: EncodeOptions): Uint8Array[] {
  return encodeWith(message, compileEncodeOptions(options));
}

/** Decodes frames made by encodeMessage (or any conforming peer). Throws ProtocolError subclasses only. */
export function decodeMessage(frames: readonly Uint8Array[], options?: DecodeOptions): unknown {
  const limits = compileDecodeOptions(options);
  checkFrameLimits(frames, limits);
  if (frames.length === 1) return decodeMsgpack(frames[0]!, 'frame 0');
  try {
    return new MessageReader(frames, { remainingDecompressedBytes: limits.maxDecompressedBytes }, 0).read();
  } catch (error) {
    if (error instanceof DdError) throw error;
    // E.g. a stack overflow on absurdly deep nesting: still the peer's fault, still named.
    throw new DeserializationError(`cannot decode message: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Payloads nest (a Map of Maps ...); deeper nesting than this is refused as hostile or cyclic. */
export const MAX_PAYLOAD_NESTING = 64;

// ---------------------------------------------------------------------------------- encoding

/**
 * Encoding state of one message. Writers (each with its own msgpack encoder) are pooled: one is
 * in use per nesting level, and a plain message allocates nothing but its output frame.
 */
class MessageWriter implements OutOfBandSink, SerializeContext {
  private readonly encoder = new MessageEncoder();
  private frames: Uint8Array[] | null = null;
  private options: CompiledEncodeOptions | null = null;

  write(message: unknown, options: CompiledEncodeOptions): Uint8Array[] {
    this.options = options;
    try {
      const frame0 = this.encoder.encodeValue(message, this);
      const frames = this.frames;
      if (frames === null) return [frame0];
      frames[0] = frame0;
      return frames;
    } finally {
      this.frames = null;
      this.options = null;
    }
  }

  takeOutOfBand(value: unknown): number {
    const options = this.options!;
    const [serializer, payload] = serializeOutOfBand(value, options, this);
    const frames = (this.frames ??= [EMPTY]);
    return appendPayload(frames, serializer, payload, options);
  }

  encodeNested(value: unknown): Uint8Array[] {
    return encodeWith(value, this.options!.nested);
  }
}

const EMPTY = new Uint8Array(0);
const freeWriters: MessageWriter[] = [];

let encodeNesting = 0;

function encodeWith(message: unknown, options: CompiledEncodeOptions): Uint8Array[] {
  if (encodeNesting >= MAX_PAYLOAD_NESTING) {
    throw new SerializationError(`payloads nested deeper than ${MAX_PAYLOAD_NESTING} levels (a cycle?)`);
  }
  const writer = freeWriters.pop() ?? new MessageWriter();
  encodeNesting++;
  try {
    return writer.write(message, options);
  } catch (error) {
    if (error instanceof DdError) throw error;
    // The msgpack library's own errors (sizes beyond msgpack's range) and a family's bugs.
    throw new SerializationError(`cannot encode message: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    encodeNesting--;
    if (freeWriters.length < 8) freeWriters.push(writer);
  }
}

function serializeOutOfBand(value: unknown, options: CompiledEncodeOptions, context: SerializeContext): [string, SerializedPayload] {
  let serializers = options.serializers;
  if (value instanceof Serialize) {
    serializers = value.serializers ?? serializers;
    value = value.value;
  }
  for (const name of serializers) {
    const family = findFamily(name);
    if (family === undefined) throw new SerializationError(`unknown serializer family ${JSON.stringify(name)}`);
    const payload = family.serialize(value, context);
    if (payload !== undefined) return [name, payload];
  }
  throw new SerializationError(`no serializer family of [${serializers.join(', ')}] can serialize ${describeValue(value)}`);
}

// ---------------------------------------------------------------------------------- decoding

function checkFrameLimits(frames: readonly Uint8Array[], limits: CompiledDecodeOptions): void {
  if (frames.length === 0) throw new DeserializationError('a message needs at least frame 0');
  if (frames.length > limits.maxFrames) {
    throw new FrameLimitError(`${frames.length} frames exceed the limit of ${limits.maxFrames}`);
  }
  let total = 0;
  for (const frame of frames) {
    if (frame.byteLength > limits.maxFrameBytes) {
      throw new FrameLimitError(`frame of ${frame.byteLength} bytes exceeds the limit of ${limits.maxFrameBytes}`);
    }
    total += frame.byteLength;
  }
  if (total > limits.maxMessageBytes) {
    throw new FrameLimitError(`message of ${total} bytes exceeds the limit of ${limits.maxMessageBytes}`);
  }
}

/** Decoding state of one message with out-of-band frames; nested payloads share its budget. */
class MessageReader implements DeserializeContext {
  /** Sub-headers by frame index, in wire order; undefined once a placeholder has used one. */
  private readonly headers = new Map<number, SubHeader | undefined>();
  private unresolved = 0;

  constructor(
    private readonly frames: readonly Uint8Array[],
    private readonly budget: DecompressionBudget,
    private readonly nesting: number,
  ) {
    if (nesting > MAX_PAYLOAD_NESTING) throw new DeserializationError(`payloads nested deeper than ${MAX_PAYLOAD_NESTING} levels`);
  }

  read(): unknown {
    const { frames } = this;
    // The sub-headers chain from frame 1 to the last frame; each one states its frame count.
    for (let index = 1; index < frames.length; ) {
      const header = readSubHeader(frames, index);
      this.headers.set(index, header);
      index += 1 + header.count;
    }
    this.unresolved = this.headers.size;
    const decoded = decodeMsgpack(frames[0]!, 'frame 0');
    // Without a single placeholder map in frame 0 the walk below would find nothing to replace
    // (and then report the unreferenced payloads, as it does here).
    const value = placeholderMapsInLastDecode() === 0 ? decoded : this.resolve(decoded);
    if (this.unresolved !== 0) {
      throw new DeserializationError(`${this.unresolved} out-of-band payloads are not referenced from frame 0`);
    }
    return value;
  }

  decodeNested(frames: Uint8Array[]): unknown {
    if (frames.length === 0) throw new DeserializationError('a nested message needs at least frame 0');
    if (frames.length === 1) return decodeMsgpack(frames[0]!, 'nested frame 0');
    return new MessageReader(frames, this.budget, this.nesting + 1).read();
  }

  /** Replaces placeholders inside `value` (in place) by their payloads. */
  private resolve(value: unknown): unknown {
    // The whole of frame 0 is walked, even after the last payload is found, so that a stray
    // placeholder is reported rather than delivered as a plain map.
    if (typeof value !== 'object' || value === null) return value;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (typeof item === 'object' && item !== null) value[i] = this.resolve(item);
      }
      return value;
    }
    if (!isPlainObject(value)) return value; // Uint8Array (msgpack bin) or Date (timestamp ext)
    const record = value as Record<string, unknown>;
    if (Object.hasOwn(record, PLACEHOLDER_KEY)) return this.payloadFor(record);
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item === 'object' && item !== null) record[key] = this.resolve(item);
    }
    return value;
  }

  private payloadFor(placeholder: Record<string, unknown>): unknown {
    const index = placeholder[PLACEHOLDER_KEY];
    if (Object.keys(placeholder).length !== 1) {
      throw new DeserializationError(`a placeholder map has the single key ${PLACEHOLDER_KEY}, got ${Object.keys(placeholder).join(', ')}`);
    }
    const header = typeof index === 'number' ? this.headers.get(index) : undefined;
    if (header === undefined) {
      const why = typeof index === 'number' && this.headers.has(index) ? 'is referenced twice' : 'is not a sub-header';
      throw new DeserializationError(`placeholder ${JSON.stringify(placeholder)}: frame ${String(index)} ${why}`);
    }
    this.headers.set(index as number, undefined);
    this.unresolved--;
    const payloadFrames = readPayloadFrames(this.frames, index as number, header, this.budget);
    const family = familyForDecoding(header.serializer);
    try {
      return family.deserialize(header, payloadFrames, this);
    } catch (error) {
      if (error instanceof DdError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new DeserializationError(`${header.serializer} payload at frame ${String(index)} cannot be deserialized: ${reason}`, { cause: error });
    }
  }
}
