// One out-of-band payload on the wire: a msgpack sub-header frame followed by `count`
// sub-frames. The sub-header carries the family's fields plus the protocol's own:
//   serializer   family name
//   compression  per sub-frame: codec name or null
//   count        number of sub-frames that follow the sub-header
//   lengths      per sub-frame: uncompressed length (present iff some sub-frame is compressed)
//   splits       per family frame: how many consecutive sub-frames it was split into
//                (present iff some frame was split; the reader concatenates them)

import { maybeCompress, decompressFrame, type DecompressionBudget } from './compression';
import { DeserializationError, SerializationError } from './errors';
import type { CompiledEncodeOptions } from './message-options';
import { decodeMsgpack, encodePlain, isPlainObject } from './msgpack-codec';
import { RESERVED_HEADER_FIELDS, type SerializedPayload, type SubHeader } from './serializers/family';

/**
 * Appends the sub-header and sub-frames of `payload` to `out`; returns the sub-header's index.
 * Uncompressed sub-frames are the family's frames themselves or subarray views of them.
 */
export function appendPayload(out: Uint8Array[], serializer: string, payload: SerializedPayload, options: CompiledEncodeOptions): number {
  const headerIndex = out.length;
  out.push(EMPTY); // the sub-header goes here once the sub-frames are known
  const compression: (string | null)[] = [];
  let lengths: number[] | undefined;
  let splits: number[] | undefined;
  const { splitSize, compression: codec, compressionName } = options;
  const frames = payload.frames;
  for (let f = 0; f < frames.length; f++) {
    const frame = frames[f]!;
    const pieces = frame.byteLength > splitSize ? Math.ceil(frame.byteLength / splitSize) : 1;
    if (pieces > 1 && splits === undefined) splits = new Array<number>(f).fill(1);
    splits?.push(pieces);
    for (let p = 0; p < pieces; p++) {
      const piece = pieces === 1 ? frame : frame.subarray(p * splitSize, Math.min(frame.byteLength, (p + 1) * splitSize));
      const compressed = codec === null ? null : maybeCompress(piece, codec);
      if (compressed !== null && lengths === undefined) {
        // Back-fill the lengths of the sub-frames written so far.
        lengths = [];
        for (let i = headerIndex + 1; i < out.length; i++) lengths.push(out[i]!.byteLength);
      }
      lengths?.push(piece.byteLength);
      out.push(compressed ?? piece);
      compression.push(compressed === null ? null : compressionName);
    }
  }
  const header: Record<string, unknown> = { serializer, compression, count: compression.length };
  if (lengths !== undefined) header.lengths = lengths;
  if (splits !== undefined) header.splits = splits;
  for (const key of Object.keys(payload.header)) {
    if (RESERVED_HEADER_FIELDS.has(key)) {
      throw new SerializationError(`serializer family ${JSON.stringify(serializer)} set the reserved sub-header field ${JSON.stringify(key)}`);
    }
    header[key] = payload.header[key];
  }
  out[headerIndex] = encodePlain(header);
  return headerIndex;
}

const EMPTY = new Uint8Array(0);

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Decodes and checks the sub-header at `index` against the frames that follow it. */
export function readSubHeader(frames: readonly Uint8Array[], index: number): SubHeader {
  const header = decodeMsgpack(frames[index]!, `sub-header frame ${index}`);
  const where = `sub-header frame ${index}`;
  if (typeof header !== 'object' || header === null || !isPlainObject(header) || Array.isArray(header)) {
    throw new DeserializationError(`${where} is not a map`);
  }
  const { serializer, compression, count, lengths, splits } = header as Record<string, unknown>;
  if (typeof serializer !== 'string') throw new DeserializationError(`${where} has no serializer name`);
  if (!isCount(count) || count > frames.length - index - 1) {
    throw new DeserializationError(`${where} announces ${String(count)} sub-frames, ${frames.length - index - 1} follow it`);
  }
  if (!Array.isArray(compression) || compression.length !== count || !compression.every((c) => c === null || typeof c === 'string')) {
    throw new DeserializationError(`${where} needs a compression list of ${count} names or nulls`);
  }
  if (lengths !== undefined && (!Array.isArray(lengths) || lengths.length !== count || !lengths.every(isCount))) {
    throw new DeserializationError(`${where} needs a lengths list of ${count} sizes`);
  }
  if (lengths === undefined && compression.some((c) => c !== null)) {
    throw new DeserializationError(`${where} has compressed sub-frames but no lengths`);
  }
  if (splits !== undefined) {
    if (!Array.isArray(splits) || !splits.every((s) => isCount(s) && s >= 1)) {
      throw new DeserializationError(`${where} needs splits to be a list of positive counts`);
    }
    let total = 0;
    for (const s of splits as number[]) total += s;
    if (total !== count) throw new DeserializationError(`${where} splits add up to ${total}, not to count ${count}`);
  }
  return header as SubHeader;
}

/** The family frames of the payload whose sub-header is at `index`: decompressed and joined. */
export function readPayloadFrames(frames: readonly Uint8Array[], index: number, header: SubHeader, budget: DecompressionBudget): Uint8Array[] {
  const { compression, count } = header;
  const lengths = header.lengths as readonly number[] | undefined;
  const subFrames = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) {
    const raw = frames[index + 1 + i]!;
    const codec = compression[i] ?? null;
    if (codec === null) {
      if (lengths !== undefined && lengths[i] !== raw.byteLength) {
        throw new DeserializationError(`sub-frame ${index + 1 + i} has ${raw.byteLength} bytes, its sub-header says ${lengths[i]}`);
      }
      subFrames[i] = raw;
    } else {
      subFrames[i] = decompressFrame(codec, raw, lengths![i]!, budget);
    }
  }
  const splits = header.splits as readonly number[] | undefined;
  if (splits === undefined) return subFrames;
  const joined: Uint8Array[] = [];
  let next = 0;
  for (const pieces of splits) {
    joined.push(pieces === 1 ? subFrames[next]! : concat(subFrames, next, pieces));
    next += pieces;
  }
  return joined;
}

/**
 * The sub-frames joined. When they are adjacent windows of one buffer (FrameDecoder reassembles
 * a message that spans socket chunks into one allocation, so the pieces of a split frame are),
 * the join is a view of that buffer: no copy of a large payload.
 */
function concat(frames: readonly Uint8Array[], start: number, n: number): Uint8Array {
  const first = frames[start]!;
  let size = first.byteLength;
  let adjacent = true;
  for (let i = start + 1; i < start + n; i++) {
    const f = frames[i]!;
    if (f.buffer !== first.buffer || f.byteOffset !== first.byteOffset + size) adjacent = false;
    size += f.byteLength;
  }
  if (adjacent) return new Uint8Array(first.buffer, first.byteOffset, size);
  const out = new Uint8Array(size);
  let offset = 0;
  for (let i = start; i < start + n; i++) {
    out.set(frames[i]!, offset);
    offset += frames[i]!.byteLength;
  }
  return out;
}
