import { FunctionSerializationError, ref } from '../src/index';
import { functionName, functionSource, toFunctionRef } from '../src/internal';

function evalSource(src: string): (...a: unknown[]) => unknown {
  return new Function(`return (${src}\n);`)() as (...a: unknown[]) => unknown;
}

describe('functions by source', () => {
  test('function declarations, arrows, async and generators', async () => {
    function dec(x: number): number {
      return x * 2;
    }
    expect(evalSource(functionSource(dec))(3)).toBe(6);
    expect(evalSource(functionSource((x: number) => x + 1))(1)).toBe(2);
    expect(evalSource(functionSource((x: number) => x + 1))(1)).toBe(2);
    expect(await evalSource(functionSource(async (x: number) => x + 1))(1)).toBe(2);
    function* gen(): Generator<number> {
      yield 1;
      yield 2;
    }
    expect([...(evalSource(functionSource(gen))() as Iterable<number>)]).toEqual([1, 2]);
  });

  test('method shorthand becomes a function expression', async () => {
    const obj = {
      double(x: number) {
        return x * 2;
      },
      async later(x: number) {
        return x + 1;
      },
      *gen() {
        yield 7;
      },
      async *agen() {
        yield 8;
      },
      'quoted-name'(x: number) {
        return -x;
      },
    };
    expect(evalSource(functionSource(obj.double))(4)).toBe(8);
    expect(await evalSource(functionSource(obj.later))(4)).toBe(5);
    expect([...(evalSource(functionSource(obj.gen))() as Iterable<number>)]).toEqual([7]);
    expect(functionSource(obj.agen)).toMatch(/^async function\* agen/);
    expect(evalSource(functionSource(obj['quoted-name']))(4)).toBe(-4);
    class K {
      static triple(x: number): number {
        return x * 3;
      }
      method(x: number): number {
        return x - 1;
      }
    }
    expect(evalSource(functionSource(K.triple))(2)).toBe(6);
    expect(evalSource(functionSource(K.prototype.method))(2)).toBe(1);
  });

  test('bound and native functions give a clear error', () => {
    const bound = function (this: unknown, x: number) {
      return x;
    }.bind(null);
    expect(() => toFunctionRef(bound)).toThrow(FunctionSerializationError);
    expect(() => toFunctionRef(bound)).toThrow(/bound/);
    expect(() => toFunctionRef(Math.max)).toThrow(/native/);
    expect(() => toFunctionRef(Math.max)).toThrow(/ref\(/);
  });

  test('refs are cached per function and hashed by source', () => {
    const f = (x: number): number => x;
    const a = toFunctionRef(f);
    expect(toFunctionRef(f)).toBe(a);
    expect(a).toMatchObject({ kind: 'source', name: 'f' });
    expect((a as { hash: string }).hash).toMatch(/^[0-9a-f]{32}$/);
    expect(functionName((x: number) => x)).toBe('lambda');
  });

  test('module references', () => {
    const r = ref('/abs/tasks.js', 'inc');
    expect(toFunctionRef(r)).toEqual({ kind: 'module', module: '/abs/tasks.js', export: 'inc' });
    expect(functionName(r)).toBe('inc');
    expect(functionName(ref('some-pkg'))).toBe('some-pkg');
    expect(() => ref('')).toThrow(TypeError);
  });
});
