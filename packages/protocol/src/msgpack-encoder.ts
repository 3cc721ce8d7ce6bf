// dd's msgpack encoder for frame 0 of messages and for plain sub-frames.
//
// It writes exactly the bytes @msgpack/msgpack's Encoder wrote for the same plain values (the
// protocol vectors pin them), with dd's two rules on top: a value that is not plain msgpack
// (a class instance, a Map, a Buffer, undefined, a bigint, a large typed array...) goes to an
// OutOfBandSink and leaves the placeholder {"__Serialized__": index} in its place, so encoding
// stays one pass; and -0 travels as float64 so it comes back as -0.
//
// Why not the library's Encoder any more: dd's hot path is encoding small plain messages
// ({op, key, nbytes, ...}), thousands per second in every process. The library dispatches each
// value through several methods (doEncode, encodeObject, an extension-codec lookup per object,
// a bounds check per byte written) and V8 compiles all of that again in each of dd's isolates.
// This class is one switch per value and one bounds check per value: encodeMessage of a small
// message took 466-519 ns against 595-685 (packages/protocol/bench/encode-decode.js).

import { SerializationError } from './errors';

/** Key of the single-entry map that stands in frame 0 for a value taken out of band. */
export const PLACEHOLDER_KEY = '__Serialized__';

/** Receives a value frame 0 cannot hold; returns the frame index of its sub-header. */
export interface OutOfBandSink {
  takeOutOfBand(value: unknown): number;
}

/** Deepest nesting of arrays and objects accepted when encoding (guards against cycles). */
export const MAX_ENCODE_DEPTH = 512;

/** Uint8Arrays up to this size travel inline in frame 0 (msgpack bin) rather than out of band. */
export const INLINE_BYTES_LIMIT = 4096;

/** Strings up to this many UTF-16 units are written by a JS loop; longer ones by TextEncoder. */
const SHORT_STRING = 50;

const objectPrototype = Object.prototype;
const uint8ArrayPrototype = Uint8Array.prototype;
const hasOwn = Object.hasOwn;
const textEncoder = new TextEncoder();

/** True for objects that msgpack maps carry as they are: `{...}` literals and null-prototype objects. */
export function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === objectPrototype || proto === null;
}

/** Thrown by a MessageEncoder without sink when it meets a value that is not plain msgpack. */
export class NotPlainError extends SerializationError {
  override readonly code: string = 'DD_ERR_NOT_PLAIN';
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

/**
 * A msgpack encoder for dd messages. With a sink it takes non-plain values out of band; without
 * one (`sink === null`) it accepts plain values only and throws NotPlainError otherwise.
 * Not reentrant: a sink that encodes nested values uses another encoder (acquireEncoder).
 */
export class MessageEncoder {
  sink: OutOfBandSink | null = null;
  private bytes: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialBufferSize = 1024) {
    this.bytes = new Uint8Array(initialBufferSize);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Encodes `value` into a fresh Uint8Array that the caller owns. */
  encodeValue(value: unknown, sink: OutOfBandSink | null): Uint8Array {
    this.sink = sink;
    this.pos = 0;
    try {
      this.write(value, 1);
      return this.bytes.slice(0, this.pos);
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
    this.sink = sink;
    this.pos = 0;
    try {
      this.write(value, depth);
      return this.bytes.subarray(0, this.pos);
    } finally {
      this.sink = null;
    }
  }

  private write(value: unknown, depth: number): void {
    if (depth > MAX_ENCODE_DEPTH) {
      throw new SerializationError(`message nested deeper than ${MAX_ENCODE_DEPTH} levels (a cycle?)`);
    }
    switch (typeof value) {
      case 'string':
        this.writeString(value);
        return;
      case 'number':
        this.writeNumber(value);
        return;
      case 'boolean':
        this.reserve(1);
        this.bytes[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case 'object':
        if (value === null) {
          this.reserve(1);
          this.bytes[this.pos++] = 0xc0;
        } else if (Array.isArray(value)) {
          this.writeArray(value, depth);
        } else if (isPlainObject(value)) {
          this.writeMap(value as Record<string, unknown>, depth);
        } else if (this.sink !== null && isInlineBytes(value)) {
          // A small Uint8Array (every task spec is one) is written as msgpack bin in frame 0:
          // out of band it cost a sub-header and a frame on encode and a placeholder lookup on
          // decode, ~40% of encoding a compute-task message. Readers return bin as a Uint8Array.
          this.writeBinary(value as Uint8Array);
        } else {
          this.takeOutOfBand(value);
        }
        return;
      default:
        // undefined, bigint, function, symbol
        this.takeOutOfBand(value);
    }
  }

  private takeOutOfBand(value: unknown): void {
    const sink = this.sink;
    if (sink === null) throw new NotPlainError(`not plain msgpack data: ${describeValue(value)}`);
    const index = sink.takeOutOfBand(value);
    this.reserve(1);
    this.bytes[this.pos++] = 0x81; // fixmap with one entry
    this.writeString(PLACEHOLDER_KEY);
    this.writeNumber(index);
  }

  private writeNumber(value: number): void {
    this.reserve(9);
    const bytes = this.bytes;
    const view = this.view;
    const p = this.pos;
    // msgpack integers have no negative zero: -0 is written as a float64.
    if (Number.isSafeInteger(value) && !(value === 0 && 1 / value < 0)) {
      if (value >= 0) {
        if (value < 0x80) {
          bytes[p] = value;
          this.pos = p + 1;
        } else if (value < 0x100) {
          bytes[p] = 0xcc;
          bytes[p + 1] = value;
          this.pos = p + 2;
        } else if (value < 0x10000) {
          bytes[p] = 0xcd;
          view.setUint16(p + 1, value);
          this.pos = p + 3;
        } else if (value < 0x100000000) {
          bytes[p] = 0xce;
          view.setUint32(p + 1, value);
          this.pos = p + 5;
        } else {
          bytes[p] = 0xcf;
          view.setUint32(p + 1, value / 0x100000000); // truncated to the high word
          view.setUint32(p + 5, value); // ToUint32: the low word
          this.pos = p + 9;
        }
      } else if (value >= -0x20) {
        bytes[p] = 0xe0 | (value + 0x20);
        this.pos = p + 1;
      } else if (value >= -0x80) {
        bytes[p] = 0xd0;
        view.setInt8(p + 1, value);
        this.pos = p + 2;
      } else if (value >= -0x8000) {
        bytes[p] = 0xd1;
        view.setInt16(p + 1, value);
        this.pos = p + 3;
      } else if (value >= -0x80000000) {
        bytes[p] = 0xd2;
        view.setInt32(p + 1, value);
        this.pos = p + 5;
      } else {
        bytes[p] = 0xd3;
        view.setUint32(p + 1, Math.floor(value / 0x100000000));
        view.setUint32(p + 5, value);
        this.pos = p + 9;
      }
    } else {
      bytes[p] = 0xcb;
      view.setFloat64(p + 1, value);
      this.pos = p + 9;
    }
  }

  private writeString(value: string): void {
    const n = value.length;
    if (n <= SHORT_STRING) {
      // dd's messages are full of short ASCII strings (keys, ops, stimulus ids, field names):
      // one pass writes them, and the header is known before the first byte.
      this.reserve(2 + n);
      const bytes = this.bytes;
      const start = this.pos;
      let p = n < 32 ? start + 1 : start + 2;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        bytes[p++] = c;
      }
      if (i === n) {
        if (n < 32) {
          bytes[start] = 0xa0 + n; // fixstr
        } else {
          bytes[start] = 0xd9; // str 8
          bytes[start + 1] = n;
        }
        this.pos = p;
        return;
      }
    }
    const byteLength = utf8Length(value);
    this.reserve(5 + byteLength);
    this.writeHeader(byteLength, 0xa0, 32, 0xd9, 0xda, 0xdb, 'string (UTF-8 bytes)');
    if (n > SHORT_STRING) {
      textEncoder.encodeInto(value, this.bytes.subarray(this.pos, this.pos + byteLength));
    } else {
      writeUtf8(value, this.bytes, this.pos);
    }
    this.pos += byteLength;
  }

  private writeArray(value: readonly unknown[], depth: number): void {
    const n = value.length;
    this.reserve(5);
    this.writeHeader(n, 0x90, 16, 0, 0xdc, 0xdd, 'array');
    for (let i = 0; i < n; i++) this.write(value[i], depth + 1);
  }

  private writeMap(value: Record<string, unknown>, depth: number): void {
    if (hasOwn(value, PLACEHOLDER_KEY)) {
      throw new SerializationError(`the key ${JSON.stringify(PLACEHOLDER_KEY)} is reserved by the dd protocol`);
    }
    const keys = Object.keys(value);
    const n = keys.length;
    this.reserve(5);
    this.writeHeader(n, 0x80, 16, 0, 0xde, 0xdf, 'map');
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      // Receivers refuse it (it would set the decoded object's prototype): fail here, naming it.
      if (key === '__proto__') throw new SerializationError('an object with an own "__proto__" key cannot be sent (receivers refuse it); rename the key or use a Map');
      this.writeString(key);
      this.write(value[key], depth + 1);
    }
  }

  /**
   * The header of a string, bin, array or map of length `n`: the fix form below `fixLimit`
   * (0: none), then the 8-bit length form (type8; 0: none), the 16- and the 32-bit one.
   * The caller has reserved the 5 bytes it may take.
   */
  private writeHeader(n: number, fix: number, fixLimit: number, type8: number, type16: number, type32: number, what: string): void {
    const p = this.pos;
    if (n < fixLimit) {
      this.bytes[p] = fix + n;
      this.pos = p + 1;
    } else if (type8 !== 0 && n < 0x100) {
      this.bytes[p] = type8;
      this.bytes[p + 1] = n;
      this.pos = p + 2;
    } else if (n < 0x10000) {
      this.bytes[p] = type16;
      this.view.setUint16(p + 1, n);
      this.pos = p + 3;
    } else if (n < 0x100000000) {
      this.bytes[p] = type32;
      this.view.setUint32(p + 1, n);
      this.pos = p + 5;
    } else {
      throw new SerializationError(`${what} too large for msgpack: ${n}`);
    }
  }

  private writeBinary(value: Uint8Array): void {
    const size = value.byteLength;
    this.reserve(5 + size);
    this.writeHeader(size, 0, 0, 0xc4, 0xc5, 0xc6, 'bin');
    this.bytes.set(value, this.pos);
    this.pos += size;
  }

  /** Makes room for `n` more bytes (at least doubling, so appends stay amortized O(1)). */
  private reserve(n: number): void {
    const needed = this.pos + n;
    if (needed <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }
}

/** Exactly a Uint8Array (not a Buffer or other subclass, whose type must survive) of at most INLINE_BYTES_LIMIT bytes. */
function isInlineBytes(value: object): boolean {
  return Object.getPrototypeOf(value) === uint8ArrayPrototype && (value as Uint8Array).byteLength <= INLINE_BYTES_LIMIT;
}

/**
 * Code point at `i` of `s` and whether it took a surrogate pair. A lone surrogate counts as
 * itself (3 bytes): the same count as TextEncoder, which writes U+FFFD in its place, and as the
 * JS writer below, which writes it as is (what @msgpack/msgpack did for short strings).
 */
function codePointAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if ((d & 0xfc00) === 0xdc00) return ((c & 0x3ff) << 10) + (d & 0x3ff) + 0x10000;
  }
  return c;
}

function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const cp = codePointAt(s, i);
    if (cp < 0x80) bytes += 1;
    else if (cp < 0x800) bytes += 2;
    else if (cp < 0x10000) bytes += 3;
    else {
      bytes += 4;
      i++; // the low surrogate
    }
  }
  return bytes;
}

function writeUtf8(s: string, out: Uint8Array, offset: number): void {
  let p = offset;
  for (let i = 0; i < s.length; i++) {
    const cp = codePointAt(s, i);
    if (cp < 0x80) {
      out[p++] = cp;
    } else if (cp < 0x800) {
      out[p++] = 0xc0 | (cp >> 6);
      out[p++] = 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      out[p++] = 0xe0 | (cp >> 12);
      out[p++] = 0x80 | ((cp >> 6) & 0x3f);
      out[p++] = 0x80 | (cp & 0x3f);
    } else {
      out[p++] = 0xf0 | (cp >> 18);
      out[p++] = 0x80 | ((cp >> 12) & 0x3f);
      out[p++] = 0x80 | ((cp >> 6) & 0x3f);
      out[p++] = 0x80 | (cp & 0x3f);
      i++;
    }
  }
}
