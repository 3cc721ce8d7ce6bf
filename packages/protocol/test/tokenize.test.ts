import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { canonicalText, keyFor, SerializationError, tokenize } from '../src';

function inc(x: number): number {
  return x + 1;
}

// Values whose tokens must not depend on the process that computes them.
const SAMPLE = {
  text: 'héllo ☃',
  n: [1, -0, 2.5, NaN, Infinity, -Infinity, 2 ** 60],
  big: 12345678901234567890n,
  buffer: Buffer.from('abc'),
  i16: new Int16Array([1, -2, 3]),
  map: new Map<unknown, unknown>([[2, 'b'], ['1', 'a'], [[1], { z: 1, a: 2 }]]),
  set: new Set(['b', 'a', 3]),
  date: new Date(Date.UTC(2021, 3, 1)),
  nothing: undefined,
  nested: { b: [null, true], a: { y: 1, x: 2 } },
};

describe('tokenize', () => {
  it('is a 32 hex digit string', () => {
    expect(tokenize(1, 'a')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('ignores object key order, Map insertion order and Set insertion order', () => {
    expect(tokenize({ a: 1, b: 2 })).toBe(tokenize({ b: 2, a: 1 }));
    expect(tokenize(new Map([[1, 'x'], [2, 'y']]))).toBe(tokenize(new Map([[2, 'y'], [1, 'x']])));
    expect(tokenize(new Set([1, 2, 3]))).toBe(tokenize(new Set([3, 1, 2])));
  });

  it('tells apart values JSON would confuse', () => {
    const distinct = [
      undefined, null, 0, -0, NaN, Infinity, '0', 0n, [], {}, [undefined], { a: undefined },
      Buffer.from([1, 2]), new Uint8Array([1, 2]), new Int8Array([1, 2]), new Uint16Array([0x0201]),
      new Map(), new Set(), new Map([[1, 2]]), { 1: 2 }, [1, 2], ['A', 1, 2], new Date(0), 'A',
      () => 1, () => 2, new Error('x'), new TypeError('x'),
    ];
    const tokens = distinct.map((v) => tokenize(v));
    expect(new Set(tokens).size).toBe(distinct.length);
  });

  it('treats typed arrays by content and type', () => {
    expect(tokenize(new Float64Array([1, 2]))).toBe(tokenize(new Float64Array([1, 2])));
    const backing = new Float64Array([0, 1, 2, 0]);
    expect(tokenize(backing.subarray(1, 3))).toBe(tokenize(new Float64Array([1, 2])));
    expect(tokenize(new Float64Array([1, 2]))).not.toBe(tokenize(new Float64Array([1, 3])));
  });

  it('refuses cycles with a named error', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => tokenize(cyclic)).toThrow(SerializationError);
    const shared = { a: 1 };
    expect(() => tokenize([shared, shared])).not.toThrow(); // repeated, not cyclic
  });

  it('gives the same token in another process', () => {
    const script = `
      const { tokenize, keyFor } = require(${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))});
      // The same source text as this test's inc after compilation (toString sees compiled code).
      const inc = eval(${JSON.stringify(`(${inc.toString()})`)});
      const SAMPLE = {
        text: 'héllo ☃',
        n: [1, -0, 2.5, NaN, Infinity, -Infinity, 2 ** 60],
        big: 12345678901234567890n,
        buffer: Buffer.from('abc'),
        i16: new Int16Array([1, -2, 3]),
        map: new Map([[2, 'b'], ['1', 'a'], [[1], { z: 1, a: 2 }]]),
        set: new Set(['b', 'a', 3]),
        date: new Date(Date.UTC(2021, 3, 1)),
        nothing: undefined,
        nested: { a: { x: 2, y: 1 }, b: [null, true] },
      };
      process.stdout.write(JSON.stringify([tokenize(SAMPLE), keyFor(inc, [1, SAMPLE])]));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 })) as string[];
    expect(out).toEqual([tokenize(SAMPLE), keyFor(inc, [1, SAMPLE])]);
  });
});

describe('keyFor', () => {
  it('names the key after the function', () => {
    expect(keyFor(inc, [1])).toMatch(/^inc-[0-9a-f]{32}$/);
    expect(keyFor(inc, [1])).toBe(keyFor(inc, [1]));
    expect(keyFor(inc, [1])).not.toBe(keyFor(inc, [2]));
  });

  it("calls anonymous functions 'lambda'", () => {
    expect(keyFor([(x: number) => x][0]!, [1])).toMatch(/^lambda-[0-9a-f]{32}$/);
  });

  it('depends on the function source', () => {
    const a = function f(x: number) { return x; };
    const b = function f(x: number) { return x + 0; };
    expect(keyFor(a, [1])).not.toBe(keyFor(b, [1]));
  });

  it('exposes the canonical text it hashes', () => {
    expect(canonicalText({ b: 1, a: [undefined, -0] })).toBe('[{"a":["A",["u"],["n","-0"]],"b":1}]');
  });
});
