// Writes the golden vectors to tools/protocol-vectors/: <name>.bin (packFrames of the encoded
// message) and vectors.json. Vectors are committed; regenerate only on a deliberate wire
// format change:  npm run vectors:generate -w @dd/protocol

import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeMessage, packFrames } from '../src';
import { registerVectorClasses, VECTOR_CASES } from './vector-cases';
import { describeForVectors } from './vector-describe';

export const VECTORS_DIR = path.resolve(__dirname, '../../../tools/protocol-vectors');

export interface VectorEntry {
  name: string;
  about: string;
  file: string;
  options: { compression: string | null; splitSize: number | null };
  frames: number;
  expected: unknown;
}

export function buildVectors(): { entries: VectorEntry[]; bytes: Map<string, Uint8Array> } {
  registerVectorClasses();
  const entries: VectorEntry[] = [];
  const bytes = new Map<string, Uint8Array>();
  for (const c of VECTOR_CASES) {
    const frames = encodeMessage(c.make(), c.options);
    const file = `${c.name}.bin`;
    bytes.set(file, packFrames(frames));
    entries.push({
      name: c.name,
      about: c.about,
      file,
      options: { compression: c.options?.compression ?? null, splitSize: c.options?.splitSize ?? null },
      frames: frames.length,
      expected: describeForVectors(c.make()),
    });
  }
  return { entries, bytes };
}

export function writeVectors(dir = VECTORS_DIR): void {
  const { entries, bytes } = buildVectors();
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, data] of bytes) fs.writeFileSync(path.join(dir, file), data);
  const doc = { format: 'dd protocol golden vectors', protocol: 1, vectors: entries };
  fs.writeFileSync(path.join(dir, 'vectors.json'), `${JSON.stringify(doc, null, 1)}\n`);
}
