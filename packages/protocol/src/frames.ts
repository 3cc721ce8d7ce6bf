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

/** The prelude alone, so a writer can send frames after it without copying them. */
export function encodePrelude(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(preludeSize(frames.length));
  const view = new DataView(out.buffer);
  // Two uint32 halves instead of setBigUint64: no BigInt allocation per frame on the hot path.
  // Lengths are below 2^53, so the high half is Math.floor(n / 2^32).
  writeUint64(view, 0, frames.length);
  for (let i = 0; i < frames.length; i++) writeUint64(view, 8 * (i + 1), frames[i]!.byteLength);
  return out;
}

/** Prelude and frames in one contiguous buffer (one copy of every frame). */
export function packFrames(frames: readonly Uint8Array[]): Uint8Array {
  let total = preludeSize(frames.length);
  for (const f of frames) total += f.byteLength;
  const out = new Uint8Array(total);
  out.set(encodePrelude(frames), 0);
  let offset = preludeSize(frames.length);
  for (const f of frames) {
    out.set(f, offset);
    offset += f.byteLength;
  }
  return out;
}

function writeUint64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

function readLength(view: DataView, offset: number, what: string, max: number): number {
  const high = view.getUint32(offset + 4, true);
  // Any high half of 2^21 or more is beyond 2^53 and so beyond every limit; below that the
  // number is exact.
  const value = high * 2 ** 32 + view.getUint32(offset, true);
  if (high >= 2 ** 21 || value > max) {
    const exact = (BigInt(high) << 32n) | BigInt(view.getUint32(offset, true));
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
  const decoder = new FrameDecoder(limits);
  const messages = decoder.push(bytes);
  if (messages.length !== 1 || decoder.bufferedBytes !== 0) {
    if (messages.length === 0) throw new ProtocolError(`truncated message: ${bytes.byteLength} bytes do not complete a message`);
    throw new ProtocolError('trailing bytes after the end of the message');
  }
  return messages[0]!;
}

/**
 * Incremental frame reader for stream transports: push chunks as they arrive, get back every
 * message they complete. Pure (no I/O), so it is tested whole, byte by byte and split at every
 * offset. Frames of a message are views into the chunk when a frame lies inside one chunk,
 * otherwise one exact-size copy; nothing is allocated for a frame before its bytes arrive.
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

  constructor(limits?: Partial<FrameLimits>) {
    this.limits = resolveFrameLimits(limits);
  }

  /** Bytes received but not yet returned as part of a message. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): Uint8Array[][] {
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.byteLength;
    }
    const out: Uint8Array[][] = [];
    for (;;) {
      const message = this.step();
      if (message === undefined) return out;
      out.push(message);
    }
  }

  private step(): Uint8Array[] | undefined {
    if (this.frameCount < 0) {
      if (this.buffered < 8) return undefined;
      const head = this.take(8);
      this.frameCount = readLength(new DataView(head.buffer, head.byteOffset, 8), 0, 'frame count', this.limits.maxFrames);
      this.messageBytes = 8;
    }
    while (this.lengths.length < this.frameCount) {
      // Read all remaining lengths at once when possible (one copy instead of one per frame).
      const want = Math.min(this.frameCount - this.lengths.length, Math.floor(this.buffered / 8));
      if (want === 0) return undefined;
      const bytes = this.take(8 * want);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < want; i++) {
        const length = readLength(view, 8 * i, 'frame length', this.limits.maxFrameBytes);
        this.messageBytes += 8 + length;
        if (this.messageBytes > this.limits.maxMessageBytes) {
          throw new FrameLimitError(`message of at least ${this.messageBytes} bytes exceeds the limit of ${this.limits.maxMessageBytes}`);
        }
        this.lengths.push(length);
      }
    }
    while (this.frames.length < this.frameCount) {
      const length = this.lengths[this.frames.length]!;
      if (this.buffered < length) return undefined;
      this.frames.push(this.take(length));
    }
    const message = this.frames;
    this.frameCount = -1;
    this.lengths = [];
    this.frames = [];
    return message;
  }

  /** Removes exactly n buffered bytes (n <= buffered): a view when they lie in one chunk. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
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
