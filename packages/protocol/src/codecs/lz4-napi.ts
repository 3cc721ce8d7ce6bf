// The Node implementation of the "lz4" compression, on lz4-napi (Rust lz4_flex through N-API).
// Wire format of an "lz4" frame: uint32 little-endian uncompressed length, then one LZ4 block;
// this is lz4_flex's size-prepended format and python-lz4's lz4.block format (store_size=True).
// Loaded only on first use and only if the native module is installed, so runtimes without it
// still load the protocol and can register another "lz4" codec.

import type { CompressionCodec } from '../compression';

/** LZ4 emits at least one byte per 255 bytes of output, so output <= 255 x input (plus literals). */
const LZ4_MAX_EXPANSION = 255;

type Lz4Napi = typeof import('lz4-napi');

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function loadLz4Napi(): CompressionCodec | undefined {
  let lz4: Lz4Napi;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    lz4 = require('lz4-napi') as Lz4Napi;
  } catch {
    return undefined;
  }
  return {
    maxExpansion: LZ4_MAX_EXPANSION,
    compress(data: Uint8Array): Uint8Array {
      return lz4.compressSync(asBuffer(data));
    },
    decompress(data: Uint8Array, uncompressedLength: number): Uint8Array {
      // The size prefix is what lz4_flex allocates: it must agree with the sub-header, which
      // the caller has already checked against the limits.
      if (data.byteLength < 4) throw new Error('lz4 frame shorter than its size prefix');
      const claimed = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
      if (claimed !== uncompressedLength) {
        throw new Error(`lz4 size prefix ${claimed} differs from the sub-header length ${uncompressedLength}`);
      }
      return lz4.uncompressSync(asBuffer(data));
    },
  };
}
