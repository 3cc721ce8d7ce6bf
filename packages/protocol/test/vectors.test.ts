// Golden vectors in tools/protocol-vectors: both directions, plus the independent Python reader.
// Regenerate (deliberately, on a wire format change) with `npm run vectors:generate -w @dd/protocol`.

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeMessage, unpackFrames } from '../src';
import { buildVectors, VECTORS_DIR, writeVectors, type VectorEntry } from '../scripts/generate-vectors';
import { registerVectorClasses, VECTOR_CASES } from '../scripts/vector-cases';
import { describeForVectors } from '../scripts/vector-describe';

if (process.env.DD_REGENERATE_VECTORS === '1') writeVectors();
registerVectorClasses();

const stored = JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, 'vectors.json'), 'utf8')) as { vectors: VectorEntry[] };
const built = buildVectors();

describe('golden vectors', () => {
  it('cover every case, 15 to 30 of them', () => {
    expect(stored.vectors.map((v) => v.name)).toEqual(VECTOR_CASES.map((c) => c.name));
    expect(stored.vectors.length).toBeGreaterThanOrEqual(15);
    expect(stored.vectors.length).toBeLessThanOrEqual(30);
  });

  describe.each(stored.vectors.map((v) => [v.name, v] as const))('%s', (name, vector) => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(VECTORS_DIR, vector.file)));

    it('encoding the message gives exactly the stored bytes', () => {
      expect(Buffer.from(built.bytes.get(vector.file)!).equals(Buffer.from(bytes))).toBe(true);
    });

    it('decoding the stored bytes gives the described value', () => {
      const frames = unpackFrames(bytes);
      expect(frames).toHaveLength(vector.frames);
      expect(describeForVectors(decodeMessage(frames))).toEqual(vector.expected);
    });

    it('the description matches the message', () => {
      const c = VECTOR_CASES.find((x) => x.name === name)!;
      expect(describeForVectors(c.make())).toEqual(vector.expected);
    });
  });
});

describe('Python reader (tools/protocol-vectors/read_vectors.py)', () => {
  const python = '/usr/bin/python3';
  const probe = spawnSync(python, ['-c', 'import msgpack, lz4.block'], { encoding: 'utf8', timeout: 20000 });
  const available = probe.status === 0;
  if (!available) {
    // eslint-disable-next-line no-console
    console.warn(`skipping the Python vector reader: ${python} lacks msgpack or lz4 (apt install python3-msgpack python3-lz4)`);
  }
  (available ? it : it.skip)('decodes every vector to its description', () => {
    const out = execFileSync(python, [path.join(VECTORS_DIR, 'read_vectors.py'), VECTORS_DIR], { encoding: 'utf8', timeout: 60000 });
    expect(out).toMatch(new RegExp(`all ${stored.vectors.length} vectors ok`));
  });
});
