import { decodeTaskCall, decodeTaskSpec, encodeMessage, encodeTaskSpec, isKeyRef, keyRef, packFrames, substituteKeyRefs, DeserializationError, SerializationError } from '../src';

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

  test('the same bytes as packFrames(encodeMessage(spec)) for plain and non-plain arguments alike', () => {
    const fn = { kind: 'source' as const, name: 'inc', source: '(x) => x + 1', hash: 'd5b119f554a68695a80934b2e8211eec' };
    const mod = { kind: 'module' as const, module: '/abs/tasks.js', export: 'heavy' };
    const argLists: unknown[][] = [
      [],
      [0],
      [-0, 1.5, -7, 2 ** 40, 'x'.repeat(300), 'é€😀', true, null],
      [keyRef('a-1'), { nested: [keyRef('b-2'), { c: [1, 2, 3] }] }],
      [new Uint8Array([1, 2, 3]), new Uint8Array(5000)],
      [Buffer.from('payload'), new Map([[1, 2]]), undefined, 10n, new Date(0)],
      [[[[[[[[1]]]]]]]],
    ];
    for (const f of [fn, mod]) {
      for (const args of argLists) {
        // The fast path caches per FunctionRef: run twice.
        for (let i = 0; i < 2; i++) expect(encodeTaskSpec({ fn: f, args }).data).toEqual(packFrames(encodeMessage({ fn: f, args })));
      }
    }
  });

  test('arguments that cannot be encoded fail as they always did', () => {
    const fn = { kind: 'source' as const, name: 'f', source: '(x) => x', hash: 'h' };
    expect(() => encodeTaskSpec({ fn, args: [{ __Serialized__: 1 }] })).toThrow(SerializationError);
    let deep: unknown = 1;
    for (let i = 0; i < 600; i++) deep = [deep];
    expect(() => encodeTaskSpec({ fn, args: [deep] })).toThrow(SerializationError);
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

  test('tasks of one function in a row decode alike; their FunctionRef is shared and frozen', () => {
    const inc = { kind: 'source' as const, name: 'inc', source: '(x) => x + 1', hash: 'h-inc' };
    const add = { kind: 'source' as const, name: 'add', source: '(a, b) => a + b', hash: 'h-add' };
    const specs = [
      { fn: inc, args: [1] },
      { fn: inc, args: [keyRef('x-1')] },
      { fn: add, args: [1, 2] },
      { fn: inc, args: [[1, { a: 2 }], 'three'] },
      { fn: inc, args: [Buffer.from('out of band')] },
      { fn: inc, args: [] },
    ];
    const back = specs.map((spec) => decodeTaskSpec(encodeTaskSpec(spec)));
    back.forEach((b, i) => {
      expect(b.fn).toEqual(specs[i]!.fn);
      expect(b.args.length).toBe(specs[i]!.args.length);
    });
    expect(isKeyRef(back[1]!.args[0])).toBe(true);
    expect(back[3]!.args).toEqual([[1, { a: 2 }], 'three']);
    expect(Buffer.isBuffer(back[4]!.args[0])).toBe(true);
    expect(back[5]!.fn).toBe(back[3]!.fn);
    expect(Object.isFrozen(back[5]!.fn)).toBe(true);
    // The same leading bytes followed by something other than an argument list is refused.
    const good = encodeTaskSpec({ fn: inc, args: [1] }).data;
    const bad = new Uint8Array(good);
    bad[bad.byteLength - 2] = 0xc3; // the args array header (fixarray of 1) becomes `true`
    expect(() => decodeTaskSpec({ language: 'js', data: bad })).toThrow(/malformed|Extra|msgpack/i);
  });

  test('decodeTaskCall gives what decodeTaskSpec then substituteKeyRefs give, on every path', () => {
    const sum = { kind: 'source' as const, name: 'sum', source: '(xs) => xs.length', hash: 'h-sum' };
    const mod = { kind: 'module' as const, module: '/abs/tasks.js', export: 'f' };
    const values: Record<string, unknown> = { a: 1, b: [2, 3], c: { __ddKey__: 'a' }, d: undefined };
    const lookup = (k: string): unknown => values[k];
    const argLists: unknown[][] = [
      [],
      [keyRef('a')],
      [Array.from({ length: 300 }, (_, i) => keyRef(i % 2 ? 'a' : 'b'))],
      // Not references: another field beside the key, a key that is not a string.
      [{ __ddKey__: 'a', other: 1 }, { __ddKey__: 5 }, { deep: [keyRef('b'), { e: keyRef('missing') }] }],
      // A looked-up value that looks like a reference stays as it is.
      [keyRef('c'), keyRef('d')],
      // Out of band (several frames): decoded, then substituted.
      [Buffer.from('x'), keyRef('a'), new Map([[1, keyRef('b')]])],
    ];
    for (const fn of [sum, mod]) {
      for (const args of argLists) {
        // Twice: the second decode of a function takes the path that decodes only the arguments.
        for (let i = 0; i < 2; i++) {
          const wire = encodeTaskSpec({ fn, args });
          const expected = decodeTaskSpec(wire);
          const got = decodeTaskCall(wire, lookup);
          expect(got.fn).toEqual(fn);
          expect(got.args).toEqual(substituteKeyRefs(expected.args, lookup));
        }
      }
    }
    expect(decodeTaskCall(encodeTaskSpec({ fn: sum, args: [keyRef('c')] }), lookup).args[0]).toBe(values['c']);
  });

  test('decodeTaskCall refuses what decodeTaskSpec refuses', () => {
    const inc = { kind: 'source' as const, name: 'inc', source: '(x) => x + 1', hash: 'h-inc-2' };
    const good = encodeTaskSpec({ fn: inc, args: [keyRef('a')] }).data;
    decodeTaskCall({ language: 'js', data: good }, () => 1); // remembers the function
    const bad = new Uint8Array(good);
    bad[bad.byteLength - 14] = 0xc3; // the args array header (fixarray of 1) becomes `true`
    expect(() => decodeTaskCall({ language: 'js', data: bad }, () => 1)).toThrow(/malformed|Extra|msgpack/i);
    expect(() => decodeTaskCall({ language: 'python', data: good }, () => 1)).toThrow(DeserializationError);
    // A reference standing as a map key is refused, as decodeTaskSpec refuses any map there.
    const other = { kind: 'source' as const, name: 'f', source: '(x) => x', hash: 'h-key-position' };
    const fnOnly = encodeMessage({ fn: other })[0]!;
    const ref = [0x81, 0xa9, ...Buffer.from('__ddKey__'), 0xa1, 0x61]; // {__ddKey__: 'a'}
    const frame = new Uint8Array([0x82, ...fnOnly.subarray(1), 0xa4, ...Buffer.from('args'), 0x91, 0x81, ...ref, 0x01]);
    const keyed = { language: 'js', data: packFrames([frame]) };
    expect(() => decodeTaskSpec(keyed)).toThrow(/type of key/);
    expect(() => decodeTaskCall(keyed, () => 1)).toThrow(/type of key/);
    expect(() => decodeTaskCall({ language: 'js', data: new Uint8Array([1, 2, 3]) }, () => 1)).toThrow(/truncated|Protocol|malformed/i);
  });

  test('a run spec of another language or garbage bytes is a named error', () => {
    expect(() => decodeTaskSpec({ language: 'python', data: new Uint8Array() })).toThrow(DeserializationError);
    expect(() => decodeTaskSpec({ language: 'js', data: new Uint8Array([1, 2, 3]) })).toThrow(/truncated|Protocol|malformed/i);
  });
});
