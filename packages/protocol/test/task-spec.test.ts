import { decodeTaskSpec, encodeTaskSpec, isKeyRef, keyRef, substituteKeyRefs, DeserializationError } from '../src';

describe('js task spec', () => {
  test('round-trips a source function with buffers and key references in its arguments', () => {
    const spec = {
      fn: { kind: 'source' as const, name: 'add', source: '(a, b) => a + b', hash: 'abc' },
      args: [keyRef('x-1'), { nested: [keyRef('y-2'), 3] }, Buffer.from('payload')],
    };
    const wire = encodeTaskSpec(spec);
    expect(wire.language).toBe('js');
    const back = decodeTaskSpec(wire);
    expect(back.fn).toEqual(spec.fn);
    expect(isKeyRef(back.args[0])).toBe(true);
    expect(Buffer.isBuffer(back.args[2])).toBe(true);
  });

  test('substitutes key references at any depth, leaving other values untouched', () => {
    const args = [keyRef('a'), { deep: [keyRef('b'), { c: keyRef('a') }] }, 'a', { __ddKey__: 'x', other: 1 }];
    const values: Record<string, number> = { a: 1, b: 2 };
    const out = substituteKeyRefs(args, (k) => values[k]);
    expect(out).toEqual([1, { deep: [2, { c: 1 }] }, 'a', { __ddKey__: 'x', other: 1 }]);
    // Unchanged subtrees are not copied.
    const plain = { p: [1, 2] };
    expect(substituteKeyRefs(plain, () => 0)).toBe(plain);
  });

  test('a run spec of another language or garbage bytes is a named error', () => {
    expect(() => decodeTaskSpec({ language: 'python', data: new Uint8Array() })).toThrow(DeserializationError);
    expect(() => decodeTaskSpec({ language: 'js', data: new Uint8Array([1, 2, 3]) })).toThrow(/truncated|Protocol|malformed/i);
  });
});
