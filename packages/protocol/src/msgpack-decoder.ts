// A msgpack decoder for dd messages: one value that fills a byte array exactly, read by
// recursive descent. It returns what @msgpack/msgpack's Decoder (default options) returns for
// the types dd peers send: nil, booleans, integers (64-bit ones as numbers, as the library
// without useBigInt64), floats, strings, bin (a Uint8Array view of the input), arrays and maps
// (string or number keys; `__proto__` refused). Extension types, which dd never writes, are
// left to the library: decodeMsgpack (msgpack-codec.ts) decodes such input again with it; and
// so are non-ASCII strings (see libraryStrings).
//
// Why not the library's decoder: it keeps an explicit stack of states (it also decodes
// streams), so every array and map costs a state object and each value a dispatch through that
// stack, and its one large function is what V8 compiles last and slowest, in each of a
// cluster's isolates (the scheduler's, and each worker's main and executor threads). Measured
// on a batch of 500 compute-task messages: 2.2-2.5 us per message against 3.5-4.2 once warm,
// 25 against 47-67 on first use. (A compute-task naming 10 000 dependencies takes 15-19 ms
// either way: building objects of 10 000 keys.)

import { Decoder } from '@msgpack/msgpack';
import { PLACEHOLDER_KEY } from './msgpack-encoder';

/** Thrown for input this decoder leaves to the library (extension types). */
export class UnsupportedMsgpackType extends Error {
  override readonly name = 'UnsupportedMsgpackType';
}

/** Thrown for malformed input, with the library's wording where it has one. */
export class MsgpackDecodeError extends Error {
  override readonly name = 'MsgpackDecodeError';
}

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

/**
 * Non-ASCII strings are read by the library itself (its header and bytes, as one value): its
 * UTF-8 reading is lenient up to 200 bytes (a lone surrogate survives the round trip, where a
 * standard decoder puts U+FFFD) and standard above, and peers must get the same strings either
 * way. dd's own messages are ASCII; user data rarely is, and pays one more call.
 */
const libraryStrings = new Decoder();

/** Map keys up to this many bytes are cached (dd messages repeat a few dozen short keys). */
const CACHED_KEY_BYTES = 16;
const KEY_CACHE_SLOTS = 4096;

const NO_BYTES = new Uint8Array(0);
const NO_VIEW = new DataView(NO_BYTES.buffer);

/** Not reentrant, and needs not be: decoding calls out to nothing that could decode again. */
export class MsgpackDecoder {
  private bytes: Uint8Array = NO_BYTES;
  private view: DataView = NO_VIEW;
  private pos = 0;
  private end = 0;
  /** Short map keys by a hash of their bytes: one string per distinct key, not one per entry. */
  private readonly keyCache: (string | undefined)[] = new Array<string | undefined>(KEY_CACHE_SLOTS);
  /**
   * Maps with the out-of-band placeholder key met by the last decode(): when none, a message's
   * reader need not walk the decoded value looking for placeholders (a compute-task naming
   * 10 000 dependencies is 20 000 map entries).
   */
  placeholderMaps = 0;
  /**
   * While decodeResolving() runs: a map of exactly one entry `{[refKey]: <string>}` decodes as
   * resolveRef(<string>) instead of as an object.
   */
  private refKey: string | null = null;
  private resolveRef: ((ref: string) => unknown) | null = null;

  /**
   * decode(), with every map of exactly one entry `{[refKey]: <string>}` replaced by
   * `resolve(<string>)` as it is read (resolved values are not looked into). `resolve` must not
   * decode (the decoder is not reentrant).
   */
  decodeResolving(bytes: Uint8Array, refKey: string, resolve: (ref: string) => unknown): unknown {
    this.refKey = refKey;
    this.resolveRef = resolve;
    try {
      return this.decode(bytes);
    } finally {
      this.refKey = null;
      this.resolveRef = null;
    }
  }

  decode(bytes: Uint8Array): unknown {
    this.placeholderMaps = 0;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.end = bytes.byteLength;
    try {
      const value = this.value();
      if (this.pos !== this.end) {
        throw new MsgpackDecodeError(`Extra ${this.end - this.pos} of ${this.end} byte(s) found at buffer[${this.pos}]`);
      }
      return value;
    } finally {
      // Do not keep the caller's bytes alive.
      this.bytes = NO_BYTES;
      this.view = NO_VIEW;
    }
  }

  /** The next `n` bytes' start; throws if the input ends before them. */
  private take(n: number): number {
    const p = this.pos;
    if (n > this.end - p) throw new MsgpackDecodeError('Insufficient data');
    this.pos = p + n;
    return p;
  }

  private value(): unknown {
    if (this.pos >= this.end) throw new MsgpackDecodeError('Insufficient data');
    const t = this.bytes[this.pos++]!;
    if (t < 0x80) return t; // positive fixint
    if (t >= 0xe0) return t - 0x100; // negative fixint
    if (t < 0x90) return this.map(t & 0x0f);
    if (t < 0xa0) return this.array(t & 0x0f);
    if (t < 0xc0) return this.str(t & 0x1f, this.pos - 1);
    const v = this.view;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.bytes[this.take(1)]!);
      case 0xc5:
        return this.bin(v.getUint16(this.take(2)));
      case 0xc6:
        return this.bin(v.getUint32(this.take(4)));
      case 0xca:
        return v.getFloat32(this.take(4));
      case 0xcb:
        return v.getFloat64(this.take(8));
      case 0xcc:
        return this.bytes[this.take(1)]!;
      case 0xcd:
        return v.getUint16(this.take(2));
      case 0xce:
        return v.getUint32(this.take(4));
      case 0xcf: {
        const p = this.take(8);
        return v.getUint32(p) * 4294967296 + v.getUint32(p + 4);
      }
      case 0xd0:
        return v.getInt8(this.take(1));
      case 0xd1:
        return v.getInt16(this.take(2));
      case 0xd2:
        return v.getInt32(this.take(4));
      case 0xd3: {
        const p = this.take(8);
        return v.getInt32(p) * 4294967296 + v.getUint32(p + 4);
      }
      case 0xd9:
        return this.str(this.bytes[this.take(1)]!, this.pos - 2);
      case 0xda:
        return this.str(v.getUint16(this.take(2)), this.pos - 3);
      case 0xdb:
        return this.str(v.getUint32(this.take(4)), this.pos - 5);
      case 0xdc:
        return this.array(v.getUint16(this.take(2)));
      case 0xdd:
        return this.array(v.getUint32(this.take(4)));
      case 0xde:
        return this.map(v.getUint16(this.take(2)));
      case 0xdf:
        return this.map(v.getUint32(this.take(4)));
      case 0xc1:
        throw new MsgpackDecodeError('Unrecognized type byte: 0xc1');
      default:
        // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext
        throw new UnsupportedMsgpackType(`msgpack extension type byte 0x${t.toString(16)}`);
    }
  }

  /** A string of `n` bytes whose msgpack header starts at `header`. */
  private str(n: number, header: number): string {
    const p = this.take(n);
    const b = this.bytes;
    const e = p + n;
    for (let i = p; i < e; i++) if (b[i]! >= 0x80) return libraryStrings.decode(b.subarray(header, e)) as string;
    return latin1Slice.call(b, p, e);
  }

  private bin(n: number): Uint8Array {
    const p = this.take(n);
    return this.bytes.subarray(p, p + n);
  }

  private array(n: number): unknown[] {
    // Every element takes at least a byte: a longer count is a lie (and must not pre-size memory).
    if (n > this.end - this.pos) throw new MsgpackDecodeError(`Max length exceeded: array length (${n}) > remaining bytes`);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value();
    return out;
  }

  private map(n: number): unknown {
    if (n > this.end - this.pos) throw new MsgpackDecodeError(`Max length exceeded: map length (${n}) > remaining bytes`);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.key();
      if (key === PLACEHOLDER_KEY) this.placeholderMaps++;
      const value = this.value();
      if (n === 1 && key === this.refKey && typeof value === 'string') return this.resolveRef!(value);
      out[key] = value;
    }
    return out;
  }

  private key(): string | number {
    if (this.pos >= this.end) throw new MsgpackDecodeError('Insufficient data');
    const t = this.bytes[this.pos]!;
    if (t >= 0xa0 && t < 0xc0 && (t & 0x1f) <= CACHED_KEY_BYTES) {
      this.pos++;
      return this.cachedKey(t & 0x1f, this.pos - 1);
    }
    const key = this.refKey === null ? this.value() : this.unresolvedValue();
    if (typeof key === 'string') {
      if (key === '__proto__') throw new MsgpackDecodeError('The key __proto__ is not allowed');
      return key;
    }
    if (typeof key === 'number') return key;
    throw new MsgpackDecodeError(`The type of key must be string or number but ${typeof key}`);
  }

  /** value() with references not resolved: a map in key position is refused, never resolved. */
  private unresolvedValue(): unknown {
    const refKey = this.refKey;
    this.refKey = null;
    try {
      return this.value();
    } finally {
      this.refKey = refKey;
    }
  }

  private cachedKey(n: number, header: number): string {
    const p = this.take(n);
    const b = this.bytes;
    let h = n;
    let ascii = true;
    for (let i = p; i < p + n; i++) {
      const c = b[i]!;
      if (c >= 0x80) ascii = false;
      h = (Math.imul(h, 31) + c) | 0;
    }
    if (!ascii) return this.checkedKey(libraryStrings.decode(b.subarray(header, p + n)) as string);
    const slot = h & (KEY_CACHE_SLOTS - 1);
    const hit = this.keyCache[slot];
    if (hit !== undefined && hit.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (hit.charCodeAt(i) !== b[p + i]) {
          same = false;
          break;
        }
      }
      if (same) return hit;
    }
    const key = this.checkedKey(latin1Slice.call(b, p, p + n));
    this.keyCache[slot] = key;
    return key;
  }

  private checkedKey(key: string): string {
    if (key === '__proto__') throw new MsgpackDecodeError('The key __proto__ is not allowed');
    return key;
  }
}
