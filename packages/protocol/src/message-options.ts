// Options of encodeMessage/decodeMessage, compiled once (defaults applied, codecs looked up)
// and cached per options object, because comm passes the same object for every message of a
// connection and the hot path should not rebuild it.

import { compressionForEncoding, type CompressionCodec } from './compression';
import { DEFAULT_FRAME_LIMITS, type FrameLimits } from './frames';

/** A compression name; 'lz4' is built in (Node: lz4-napi), others come from registerCompression. */
export type CompressionName = 'lz4' | (string & {});

export interface EncodeOptions {
  /** Compress large compressible out-of-band frames with this codec. Default null (off). */
  compression?: CompressionName | null;
  /** Out-of-band frames longer than this are sent as several sub-frames. Default 64 MiB. */
  splitSize?: number;
  /** Families tried, in order, for each out-of-band value. Default ['msgpack', 'dd']. */
  serializers?: readonly string[];
}

export interface DecodeOptions extends Partial<FrameLimits> {
  /** Most bytes that decompression may produce for one message (all payloads together). */
  maxDecompressedBytes?: number;
}

export const DEFAULT_SPLIT_SIZE = 64 * 1024 * 1024;
export const DEFAULT_SERIALIZERS: readonly string[] = Object.freeze(['msgpack', 'dd']);
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 2 ** 32;

export interface CompiledEncodeOptions {
  readonly compressionName: string | null;
  readonly compression: CompressionCodec | null;
  readonly splitSize: number;
  readonly serializers: readonly string[];
  /**
   * Options for messages nested inside a payload (Map entries, Error fields, ...): the outer
   * payload compresses and splits their frames, so they do neither themselves.
   */
  readonly nested: CompiledEncodeOptions;
}

export interface CompiledDecodeOptions extends Readonly<FrameLimits> {
  readonly maxDecompressedBytes: number;
}

function nestedOptions(serializers: readonly string[]): CompiledEncodeOptions {
  const nested: { -readonly [K in keyof CompiledEncodeOptions]: CompiledEncodeOptions[K] } = {
    compressionName: null,
    compression: null,
    splitSize: Infinity,
    serializers,
    nested: undefined as unknown as CompiledEncodeOptions,
  };
  nested.nested = nested;
  return nested;
}

const compiledEncodeOptions = new WeakMap<EncodeOptions, CompiledEncodeOptions>();

export const DEFAULT_ENCODE_OPTIONS: CompiledEncodeOptions = {
  compressionName: null,
  compression: null,
  splitSize: DEFAULT_SPLIT_SIZE,
  serializers: DEFAULT_SERIALIZERS,
  nested: nestedOptions(DEFAULT_SERIALIZERS),
};

export function compileEncodeOptions(options: EncodeOptions | undefined): CompiledEncodeOptions {
  if (options === undefined) return DEFAULT_ENCODE_OPTIONS;
  let compiled = compiledEncodeOptions.get(options);
  if (compiled === undefined) {
    const splitSize = options.splitSize ?? DEFAULT_SPLIT_SIZE;
    if (!(splitSize >= 1)) throw new RangeError(`splitSize must be at least 1, got ${splitSize}`);
    const compressionName = options.compression ?? null;
    const serializers = Object.freeze([...(options.serializers ?? DEFAULT_SERIALIZERS)]);
    compiled = {
      compressionName,
      compression: compressionName === null ? null : compressionForEncoding(compressionName),
      splitSize,
      serializers,
      nested: nestedOptions(serializers),
    };
    compiledEncodeOptions.set(options, compiled);
  }
  return compiled;
}

const compiledDecodeOptions = new WeakMap<DecodeOptions, CompiledDecodeOptions>();

export const DEFAULT_DECODE_OPTIONS: CompiledDecodeOptions = Object.freeze({
  ...DEFAULT_FRAME_LIMITS,
  maxDecompressedBytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
});

export function compileDecodeOptions(options: DecodeOptions | undefined): CompiledDecodeOptions {
  if (options === undefined) return DEFAULT_DECODE_OPTIONS;
  let compiled = compiledDecodeOptions.get(options);
  if (compiled === undefined) {
    compiled = Object.freeze({
      maxFrames: options.maxFrames ?? DEFAULT_FRAME_LIMITS.maxFrames,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_FRAME_LIMITS.maxFrameBytes,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_FRAME_LIMITS.maxMessageBytes,
      maxDecompressedBytes: options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
    });
    compiledDecodeOptions.set(options, compiled);
  }
  return compiled;
}
