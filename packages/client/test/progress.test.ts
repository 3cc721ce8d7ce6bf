// progress(futures): bars per prefix redrawn in place on a TTY, plain lines otherwise; resolves
// when every future is done, with counts (failures counted, not thrown).
import { keySplit, progress, type ProgressStream } from '../src/index';
import { withCluster } from './harness';

jest.setTimeout(30_000);

class FakeStream implements ProgressStream {
  chunks: string[] = [];
  constructor(readonly isTTY: boolean, readonly columns = 80) {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

// Self-contained task functions (they travel by source).
function slowInc(x: number): Promise<number> {
  return new Promise((resolve) => setTimeout(() => resolve(x + 1), 20));
}
function double(x: number): number {
  return 2 * x;
}
function boom(x: number): number {
  if (x === 3) throw new Error('three');
  return x;
}

test('progress groups keys by the reference\'s key_split (keySplit)', () => {
  expect(keySplit('inc-0123456789abcdef0123456789abcdef')).toBe('inc');
  expect(keySplit('load-file-3')).toBe('load-file');
  expect(keySplit('slow_inc-deadbeefcafe')).toBe('slow_inc');
  expect(keySplit('x-abcdefab')).toBe('x');
  expect(keySplit('["sum-00ff", 0]')).toBe('sum');
  expect(keySplit('plain')).toBe('plain');
});

test('on a TTY: one bar per prefix, redrawn in place, throttled, and the final state', async () => {
  await withCluster({ nWorkers: 2, nthreads: 2, workers: [{ executor: 'inline', nthreads: 2 }, { executor: 'inline', nthreads: 2 }] }, async ({ client }) => {
    const xs = client.map(slowInc, Array.from({ length: 30 }, (_, i) => i));
    const ys = client.map(double, xs);
    const bad = client.map(boom, [1, 2, 3]);
    const stream = new FakeStream(true, 100);
    const summary = await progress([xs, { ys, bad }], { stream, intervalMs: 50 });
    expect(summary).toMatchObject({ total: 63, finished: 62, erred: 1, other: 0 });
    expect(summary.prefixes.map((p) => [p.prefix, p.total, p.finished, p.erred])).toEqual([
      ['slowInc', 30, 30, 0],
      ['double', 30, 30, 0],
      ['boom', 3, 2, 1],
    ]);
    for (const f of [...xs, ...ys, ...bad]) expect(f.done()).toBe(true);

    // First drawing, at least one redraw that moves the cursor up over the 4 lines drawn, clears lines.
    expect(stream.chunks.length).toBeGreaterThanOrEqual(2);
    expect(stream.chunks[0]).not.toContain('\x1b[4A');
    expect(stream.chunks.slice(1).every((c) => c.startsWith('\x1b[4A'))).toBe(true);
    expect(stream.text).toContain('\x1b[2K');
    // Throttled: at most the first and final drawings plus one per interval (the bound scales
    // with how long a loaded machine took), and fewer than the 63 completions.
    expect(stream.chunks.length).toBeLessThanOrEqual(2 + Math.ceil(summary.elapsedMs / 50));
    expect(stream.chunks.length).toBeLessThan(63);
    const last = (stream.chunks.at(-1) as string).split('\n').map((l) => l.replace(/^[\s\S]*\x1b\[2K/, ''));
    expect(last[0]).toMatch(/^slowInc +\[#{10,}\] 30\/30$/);
    expect(last[1]).toMatch(/^double +\[#+\] 30\/30$/);
    expect(last[2]).toMatch(/^boom +\[#+!+-*\]  3\/3 1 erred$/);
    expect(last[3]).toMatch(/^done: 63\/63 tasks, \d+\.\d s$/);
    // Every line fits the terminal.
    for (const l of last) expect(l.length).toBeLessThanOrEqual(100);
  });
});

test('not a TTY: plain lines (no escape codes) and a summary per prefix', async () => {
  await withCluster({ nWorkers: 1, workers: [{ executor: 'inline', nthreads: 2 }] }, async ({ client }) => {
    const xs = client.map(slowInc, Array.from({ length: 20 }, (_, i) => 100 + i));
    const stream = new FakeStream(false);
    const summary = await progress(xs, { stream, intervalMs: 20 });
    expect(summary).toMatchObject({ total: 20, finished: 20, erred: 0 });
    expect(stream.text).not.toContain('\x1b');
    const lines = stream.text.trimEnd().split('\n');
    expect(lines.at(-2)).toBe('slowInc: 20/20 finished');
    expect(lines.at(-1)).toMatch(/^done: 20 tasks in \d+\.\d s$/);
    for (const l of lines.slice(0, -2)) expect(l).toMatch(/^progress: slowInc \d+\/20 \(\d+\.\d s\)$/);
    // Resolves with already-finished futures too, and with none at all.
    expect(await progress(xs, { stream: new FakeStream(false) })).toMatchObject({ total: 20, finished: 20 });
    const empty = new FakeStream(true);
    expect(await progress([], { stream: empty })).toMatchObject({ total: 0 });
    expect(empty.text).toContain('done: 0/0 tasks');
  });
});
