// Per-frame compression of out-of-band frames, behind a small codec registry so the protocol
// core imports nothing Node-specific: the Node "lz4" codec (lz4-napi) is loaded lazily on
// first use, and other runtimes register their own implementation with registerCompression.

import { DeserializationError, SerializationError } from './errors';
import { loadLz4Napi } from './codecs/lz4-napi';

export interface CompressionCodec {
  /** Compressed bytes in this codec's wire format. */
  compress(data: Uint8Array): Uint8Array;
  /**
   * The original bytes. `uncompressedLength` comes from the sub-header and has already been
   * checked against the decoder's limits and `maxExpansion`; the codec must throw if the data
   * does not decompress to exactly that many bytes.
   */
  decompress(data: Uint8Array, uncompressedLength: number): Uint8Array;
  /** Upper bound of uncompressed/compressed size; larger claims are refused before allocating. */
  readonly maxExpansion: number;
}

/** Frames at most this long are never compressed (the saving cannot pay for the work). */
export const MIN_COMPRESS_BYTES = 1024;
/** A frame is compressed only if its sample shrinks to at most this fraction. */
export const MAX_COMPRESSED_RATIO = 0.9;
/** The sample is SAMPLE_SLICES slices of SAMPLE_SLICE_BYTES, evenly spaced (deterministic). */
export const SAMPLE_SLICE_BYTES = 10 * 1024;
export const SAMPLE_SLICES = 5;

const codecs = new Map<string, CompressionCodec>();
const loaders = new Map<string, () => CompressionCodec | undefined>([['lz4', loadLz4Napi]]);

export function registerCompression(name: string, codec: CompressionCodec): void {
  codecs.set(name, codec);
}

/** The codec for `name`, loading the built-in implementation on first use; undefined if none. */
export function findCompression(name: string): CompressionCodec | undefined {
  let codec = codecs.get(name);
  if (codec === undefined) {
    const load = loaders.get(name);
    if (load === undefined) return undefined;
    loaders.delete(name); // try a loader once, whatever it returns
    codec = load();
    if (codec !== undefined) codecs.set(name, codec);
  }
  return codec;
}

/** Names of the compressions this process can use, for the comm handshake. */
export function availableCompressions(): string[] {
  for (const name of [...loaders.keys()]) findCompression(name);
  return [...codecs.keys()];
}

export function compressionForEncoding(name: string): CompressionCodec {
  const codec = findCompression(name);
  if (codec === undefined) throw new SerializationError(`compression ${JSON.stringify(name)} is not available in this process`);
  return codec;
}

function sampleOf(frame: Uint8Array): Uint8Array {
  if (frame.byteLength <= SAMPLE_SLICES * SAMPLE_SLICE_BYTES) return frame;
  const sample = new Uint8Array(SAMPLE_SLICES * SAMPLE_SLICE_BYTES);
  const stride = Math.floor((frame.byteLength - SAMPLE_SLICE_BYTES) / (SAMPLE_SLICES - 1));
  for (let i = 0; i < SAMPLE_SLICES; i++) {
    const start = i * stride;
    sample.set(frame.subarray(start, start + SAMPLE_SLICE_BYTES), i * SAMPLE_SLICE_BYTES);
  }
  return sample;
}

/**
 * The compressed frame, or null when compression does not pay: the frame is small, or a sample
 * of it (the whole frame when short) does not shrink by at least 10 %.
 */
export function maybeCompress(frame: Uint8Array, codec: CompressionCodec): Uint8Array | null {
  if (frame.byteLength <= MIN_COMPRESS_BYTES) return null;
  const sample = sampleOf(frame);
  const compressedSample = codec.compress(sample);
  if (compressedSample.byteLength > MAX_COMPRESSED_RATIO * sample.byteLength) return null;
  if (sample === frame) return compressedSample;
  const compressed = codec.compress(frame);
  return compressed.byteLength <= MAX_COMPRESSED_RATIO * frame.byteLength ? compressed : null;
}

/** Running allowance of decompressed bytes for one decodeMessage call (nested payloads share it). */
export interface DecompressionBudget {
  remainingDecompressedBytes: number;
}

export function decompressFrame(name: string, data: Uint8Array, uncompressedLength: number, budget: DecompressionBudget): Uint8Array {
  const codec = findCompression(name);
  if (codec === undefined) throw new DeserializationError(`frame compressed with unsupported compression ${JSON.stringify(name)}`);
  if (uncompressedLength > budget.remainingDecompressedBytes) {
    throw new DeserializationError(`decompressed size ${uncompressedLength} exceeds the remaining limit of ${budget.remainingDecompressedBytes} bytes`);
  }
  if (uncompressedLength > codec.maxExpansion * data.byteLength + 64) {
    throw new DeserializationError(`${data.byteLength} bytes of ${name} cannot decompress to the claimed ${uncompressedLength} bytes`);
  }
  budget.remainingDecompressedBytes -= uncompressedLength;
  let out: Uint8Array;
  try {
    out = codec.decompress(data, uncompressedLength);
  } catch (error) {
    throw new DeserializationError(`corrupt ${name} frame: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (out.byteLength !== uncompressedLength) {
    throw new DeserializationError(`${name} frame decompressed to ${out.byteLength} bytes, the sub-header says ${uncompressedLength}`);
  }
  return out;
}
