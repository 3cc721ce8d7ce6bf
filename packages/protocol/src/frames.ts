// The outer layer of the wire format: a message is a list of frames, sent as
//   uint64 count | count x uint64 length | frame bytes ...   (all integers little-endian)
// The reader enforces limits before it allocates anything a peer merely announced.

import { FrameLimitError, ProtocolError } from './errors';

export interface FrameLimits {
  /** Most frames one message may have. */
  maxFrames: number;
  /** Largest single frame, in bytes. */
  maxFrameBytes: number;
  /** Largest message (prelude plus all frames), in bytes. */
  maxMessageBytes: number;
}

export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = Object.freeze({
  maxFrames: 1 << 16,
  maxFrameBytes: 2 ** 31 - 1,
  maxMessageBytes: 2 ** 32,
});

export function resolveFrameLimits(limits?: Partial<FrameLimits>): FrameLimits {
  return { ...DEFAULT_FRAME_LIMITS, ...limits };
}

/** Bytes of the prelude (count and lengths) that precede `frameCount` frames. */
export function preludeSize(frameCount: number): number {
  return 8 * (frameCount + 1);
}

/** Bytes of the packed message (prelude plus frames) that `frames` make. */
export function packedSize(frames: readonly Uint8Array[]): number {
  let total = preludeSize(frames.length);
  for (let i = 0; i < frames.length; i++) total += frames[i]!.byteLength;
  return total;
}

/** The prelude alone, so a writer can send frames after it without copying them. */
export function encodePrelude(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(preludeSize(frames.length));
  writePrelude(frames, out, 0);
  return out;
}

/** Prelude and frames in one contiguous buffer (one copy of every frame). */
export function packFrames(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(packedSize(frames));
  packFramesInto(frames, out, 0);
  return out;
}

/**
 * Writes prelude and frames into `target` at `offset` (it needs `packedSize(frames)` bytes
 * there) and returns the offset after them. For writers that bring their own memory, e.g. a
 * pooled Node Buffer for a socket write; the one implementation of the packed layout.
 */
export function packFramesInto(frames: readonly Uint8Array[], target: Uint8Array, offset = 0): number {
  if (offset < 0 || offset + packedSize(frames) > target.byteLength) {
    throw new RangeError(`packFramesInto needs ${packedSize(frames)} bytes at offset ${offset} of a ${target.byteLength}-byte target`);
  }
  let at = writePrelude(frames, target, offset);
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    target.set(f, at);
    at += f.byteLength;
  }
  return at;
}

function writePrelude(frames: readonly Uint8Array[], out: Uint8Array, offset: number): number {
  writeUint64(out, offset, frames.length);
  for (let i = 0; i < frames.length; i++) writeUint64(out, offset + 8 * (i + 1), frames[i]!.byteLength);
  return offset + preludeSize(frames.length);
}

// Integers as two uint32 halves, byte by byte: no BigInt and no DataView allocation per
// message on the hot path. Values are below 2^53, so the high half is Math.floor(n / 2^32).
function writeUint64(out: Uint8Array, offset: number, value: number): void {
  const low = value >>> 0;
  const high = Math.floor(value / 2 ** 32);
  out[offset] = low;
  out[offset + 1] = low >>> 8;
  out[offset + 2] = low >>> 16;
  out[offset + 3] = low >>> 24;
  out[offset + 4] = high;
  out[offset + 5] = high >>> 8;
  out[offset + 6] = high >>> 16;
  out[offset + 7] = high >>> 24;
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) + bytes[offset + 3]! * 2 ** 24;
}

function readLength(bytes: Uint8Array, offset: number, what: string, max: number): number {
  const low = readUint32(bytes, offset);
  const high = readUint32(bytes, offset + 4);
  // Any high half of 2^21 or more is beyond 2^53 and so beyond every limit; below that the
  // number is exact.
  const value = high * 2 ** 32 + low;
  if (high >= 2 ** 21 || value > max) {
    const exact = (BigInt(high) << 32n) | BigInt(low);
    throw new FrameLimitError(`${what} ${exact} exceeds the limit of ${max}`);
  }
  return value;
}

/**
 * Splits one whole packed message back into frames. The frames are views into `bytes`
 * (no copies). Throws a ProtocolError if the bytes are truncated, carry trailing garbage or
 * break a limit.
 */
export function unpackFrames(bytes: Uint8Array, limits?: Partial<FrameLimits>): Uint8Array[] {
  // Cut straight out of the bytes, as FrameDecoder's fast path does: a worker unpacks every
  // task's spec, and a FrameDecoder per spec (its state, its limits object, the streaming
  // checks) was about a third of an executor thread's time on a map of tiny tasks.
  const messages: Uint8Array[][] = [];
  const used = wholeMessages(bytes, limits === undefined ? DEFAULT_FRAME_LIMITS : resolveFrameLimits(limits), messages);
  if (messages.length === 0) throw new ProtocolError(`truncated message: ${bytes.byteLength} bytes do not complete a message`);
  if (messages.length !== 1 || used !== bytes.byteLength) throw new ProtocolError('trailing bytes after the end of the message');
  return messages[0]!;
}

/** Reassembly buffers of at least this many bytes are shared memory once setSharedReassembly(true). */
export const SHARED_REASSEMBLY_MIN_BYTES = 1 << 20;
let sharedReassembly = false;

/**
 * Process-wide: FrameDecoder reassembles large messages (at least SHARED_REASSEMBLY_MIN_BYTES)
 * into SharedArrayBuffer memory instead of a private ArrayBuffer. Values decoded from such a
 * message (Buffers, typed arrays) are views of shared memory, which postMessage hands to a
 * worker_thread without copying (structured clone shares a SharedArrayBuffer). For processes
 * that pass received data to threads: dd workers with a thread pool turn it on. Buffer and typed
 * array code works the same on shared memory; a few web APIs refuse it, hence off by default.
 */
export function setSharedReassembly(on: boolean): void {
  sharedReassembly = on;
}

function allocateBody(size: number): Uint8Array {
  return sharedReassembly && size >= SHARED_REASSEMBLY_MIN_BYTES && typeof SharedArrayBuffer === 'function'
    ? new Uint8Array(new SharedArrayBuffer(size))
    : new Uint8Array(size);
}

/**
 * Appends to `out` the messages that lie whole in `chunk` from its start; returns the bytes they
 * used. Limits are checked as in FrameDecoder's step(), before anything is allocated.
 */
function wholeMessages(chunk: Uint8Array, limits: FrameLimits, out: Uint8Array[][]): number {
  const { maxFrames, maxFrameBytes, maxMessageBytes } = limits;
  const end = chunk.byteLength;
  let start = 0;
  while (end - start >= 8) {
    const count = readLength(chunk, start, 'frame count', maxFrames);
    let at = start + 8 + 8 * count;
    if (at > end) return start;
    let messageBytes = 8;
    for (let i = 0; i < count; i++) {
      const length = readLength(chunk, start + 8 + 8 * i, 'frame length', maxFrameBytes);
      messageBytes += 8 + length;
      if (messageBytes > maxMessageBytes) {
        throw new FrameLimitError(`message of at least ${messageBytes} bytes exceeds the limit of ${maxMessageBytes}`);
      }
    }
    if (start + messageBytes > end) return start;
    const frames: Uint8Array[] = new Array<Uint8Array>(count);
    for (let i = 0; i < count; i++) {
      const length = readLength(chunk, start + 8 + 8 * i, 'frame length', maxFrameBytes);
      frames[i] = chunk.subarray(at, at + length);
      at += length;
    }
    out.push(frames);
    start = at;
  }
  return start;
}

/**
 * Incremental frame reader for stream transports: push chunks as they arrive, get back every
 * message they complete. Pure (no I/O), so it is tested whole, byte by byte and split at every
 * offset. Frames of a message are views into the chunk when a frame lies inside one chunk.
 * Otherwise the rest of the message (that frame and all after it) is reassembled in one
 * allocation of exactly its announced size, made when its first bytes arrive, and each chunk is
 * copied into it as it arrives (one copy, while the chunk is still in cache; chunks are not held
 * back). The frames are then adjacent views of that one buffer, so a reader that joins
 * consecutive frames (split payloads) can do it without copying. The announced size is bounded
 * by the limits; zero-filled memory that has not been written yet costs no physical memory.
 *
 * Bad input (a prelude over the limits) ends the stream, since there is no way to find the next
 * message after it. If the chunk that brought the bad bytes also completed messages before
 * them, push() returns those messages and records the error in `error`; otherwise it throws.
 * Either way every later push() throws that error. A caller that sees `error` set after a push
 * has the complete messages in hand and knows the stream is dead.
 */
export class FrameDecoder {
  private readonly limits: FrameLimits;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  // Parsed state of the message in progress.
  private frameCount = -1;
  private lengths: number[] = [];
  private frames: Uint8Array[] = [];
  private messageBytes = 0;
  /** Bytes of the message in progress already taken out of `chunks` (prelude, whole frames). */
  private taken = 0;
  /** Reassembly buffer of the frames from `bodyFrom` to the end of the message, once one is needed. */
  private body: Uint8Array | null = null;
  private bodyFrom = 0;
  private bodyFilled = 0;
  private failure: Error | undefined;

  constructor(limits?: Partial<FrameLimits>) {
    this.limits = resolveFrameLimits(limits);
  }

  /** Bytes received but not yet returned as part of a message (excluding parsed prelude state). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Bytes received of the message in progress (0 between messages): a stream that ends with this above 0 was cut off mid-message. */
  get partialMessageBytes(): number {
    return this.buffered + this.taken;
  }

  /** The error that ended the stream, once bad input was seen (see the class comment). */
  get error(): Error | undefined {
    return this.failure;
  }

  push(chunk: Uint8Array): Uint8Array[][] {
    if (this.failure !== undefined) throw this.failure;
    const out: Uint8Array[][] = [];
    try {
      if (this.chunks.length === 0 && this.frameCount < 0) {
        // Fast path, the common case of small messages: nothing is pending, so whole messages
        // are cut straight out of this chunk; only a trailing partial message is buffered.
        const used = wholeMessages(chunk, this.limits, out);
        if (used < chunk.byteLength) this.append(used === 0 ? chunk : chunk.subarray(used));
      } else {
        this.append(chunk);
      }
      return this.drain(out);
    } catch (error) {
      this.failure = error as Error;
      if (out.length === 0) throw error;
      return out;
    }
  }

  /**
   * Where a transport may have the next bytes written directly, or undefined: while a reassembly
   * buffer is being filled and nothing else is pending, its unfilled rest. A socket that reads
   * into this (Node's `onread` with a buffer function) gets a large message's bytes from the
   * kernel straight into their final memory: no copy out of 64 KiB socket chunks, and a few
   * large reads instead of one callback per 64 KiB. Then call pushDirect(n) instead of push().
   */
  get directTarget(): Uint8Array | undefined {
    if (this.body === null || this.chunks.length > 0 || this.failure !== undefined) return undefined;
    return this.body.subarray(this.bodyFilled);
  }

  /** Records that `n` bytes were written at the start of the last directTarget; as push(). */
  pushDirect(n: number): Uint8Array[][] {
    if (this.failure !== undefined) throw this.failure;
    if (this.body === null || this.chunks.length > 0 || n < 0 || this.bodyFilled + n > this.body.byteLength) {
      throw new RangeError(`pushDirect(${n}) without a matching directTarget`);
    }
    this.bodyFilled += n;
    this.taken += n;
    return this.drain([]);
  }

  private drain(out: Uint8Array[][]): Uint8Array[][] {
    for (;;) {
      const message = this.step();
      if (message === undefined) return out;
      out.push(message);
    }
  }

  private append(chunk: Uint8Array): void {
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.byteLength;
    }
  }

  private step(): Uint8Array[] | undefined {
    if (this.frameCount < 0) {
      if (this.buffered < 8) return undefined;
      this.frameCount = readLength(this.take(8), 0, 'frame count', this.limits.maxFrames);
      this.messageBytes = 8;
    }
    while (this.lengths.length < this.frameCount) {
      // Read all remaining lengths at once when possible (one copy instead of one per frame).
      const want = Math.min(this.frameCount - this.lengths.length, Math.floor(this.buffered / 8));
      if (want === 0) return undefined;
      const bytes = this.take(8 * want);
      for (let i = 0; i < want; i++) {
        const length = readLength(bytes, 8 * i, 'frame length', this.limits.maxFrameBytes);
        this.messageBytes += 8 + length;
        if (this.messageBytes > this.limits.maxMessageBytes) {
          throw new FrameLimitError(`message of at least ${this.messageBytes} bytes exceeds the limit of ${this.limits.maxMessageBytes}`);
        }
        this.lengths.push(length);
      }
    }
    while (this.frames.length < this.frameCount) {
      if (this.body === null) {
        const length = this.lengths[this.frames.length]!;
        const first = this.chunks[0];
        if (length === 0 || (first !== undefined && first.byteLength >= length)) {
          this.frames.push(this.take(length)); // a view
          continue;
        }
        if (this.buffered === 0) return undefined;
        let size = 0;
        for (let i = this.frames.length; i < this.frameCount; i++) size += this.lengths[i]!;
        this.body = allocateBody(size);
        this.bodyFrom = this.frames.length;
        this.bodyFilled = 0;
      }
      if (!this.fillBody()) return undefined;
      const body = this.body;
      let at = 0;
      for (let i = this.bodyFrom; i < this.frameCount; i++) {
        const length = this.lengths[i]!;
        this.frames.push(body.subarray(at, at + length));
        at += length;
      }
      this.body = null;
    }
    const message = this.frames;
    this.frameCount = -1;
    this.lengths = [];
    this.frames = [];
    this.taken = 0;
    return message;
  }

  /** Moves buffered bytes into `body`; true once it is full. */
  private fillBody(): boolean {
    const body = this.body!;
    while (this.bodyFilled < body.byteLength) {
      const c = this.chunks[0];
      if (c === undefined) return false;
      const part = Math.min(c.byteLength, body.byteLength - this.bodyFilled);
      body.set(part === c.byteLength ? c : c.subarray(0, part), this.bodyFilled);
      this.bodyFilled += part;
      this.buffered -= part;
      this.taken += part;
      if (part === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(part);
    }
    return true;
  }

  /** Removes exactly n buffered bytes (n <= buffered): a view when they lie in one chunk. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    this.taken += n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first !== undefined && first.byteLength >= n) {
      const view = first.subarray(0, n);
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const part = Math.min(c.byteLength, n - filled);
      out.set(c.subarray(0, part), filled);
      filled += part;
      if (part === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(part);
    }
    return out;
  }
}
