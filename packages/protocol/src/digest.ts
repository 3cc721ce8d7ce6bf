// MD5 hex digests for tokenize. MD5 is used as a fast content fingerprint for cache keys, not
// for security. Node's native implementation (node:crypto) is loaded lazily when present; other
// runtimes use the pure implementation below, which gives the same digests, so a key computed
// in a browser client equals the one computed in a Node worker.

interface Md5Implementation {
  hex(data: Uint8Array): string;
}

type NodeCrypto = typeof import('node:crypto');

function loadNodeMd5(): Md5Implementation | undefined {
  let crypto: NodeCrypto;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    crypto = require('node:crypto') as NodeCrypto;
  } catch {
    return undefined;
  }
  return { hex: (data) => crypto.createHash('md5').update(data).digest('hex') };
}

let implementation: Md5Implementation | undefined;

/** MD5 of `data` as 32 lowercase hex digits. */
export function md5Hex(data: Uint8Array): string {
  implementation ??= loadNodeMd5() ?? { hex: pureMd5Hex };
  return implementation.hex(data);
}

const textEncoder = new TextEncoder();

/** MD5 of the UTF-8 encoding of `text`. */
export function md5HexOfText(text: string): string {
  return md5Hex(textEncoder.encode(text));
}

// ---------------------------------------------------------------- pure MD5 (RFC 1321)

const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

/** RFC 1321 MD5, exported for tests that compare it with node:crypto. */
export function pureMd5Hex(data: Uint8Array): string {
  const length = data.byteLength;
  const padded = new Uint8Array((((length + 8) >>> 6) + 1) << 6);
  padded.set(data);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, (length * 8) >>> 0, true);
  view.setUint32(padded.length - 4, Math.floor(length / 0x20000000), true);
  let a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
  const m = new Int32Array(16);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) m[i] = view.getInt32(offset + 4 * i, true);
    let a = a0, b = b0, c = c0, d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number, g: number;
      if (i < 16) { f = (b & c) | (~b & d); g = i; }
      else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) & 15; }
      else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) & 15; }
      else { f = c ^ (b | ~d); g = (7 * i) & 15; }
      const sum = (a + f + K[i]! + m[g]!) | 0;
      const s = SHIFTS[((i >> 4) << 2) | (i & 3)]!;
      a = d;
      d = c;
      c = b;
      b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
    }
    a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
  }
  const out = new DataView(new ArrayBuffer(16));
  out.setInt32(0, a0, true); out.setInt32(4, b0, true); out.setInt32(8, c0, true); out.setInt32(12, d0, true);
  let hex = '';
  for (let i = 0; i < 16; i++) hex += out.getUint8(i).toString(16).padStart(2, '0');
  return hex;
}
