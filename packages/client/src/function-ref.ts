// Turning a JavaScript function into something a worker can run: its source text (a
// self-contained function, compiled once per hash on the worker) or a module reference
// (specifier + export name, imported on the worker).

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { FunctionRef } from '@dd/protocol';
import { FunctionSerializationError } from './errors';
import { typeOfValue } from './describe';

const MODULE_REF = Symbol.for('dd.client.moduleRef');

/**
 * A function named by module specifier and export name, made by `ref()`. The type parameter
 * is the function's signature, so `submit` can type its arguments and result.
 */
export interface ModuleFunction<F extends (...args: any[]) => unknown = (...args: any[]) => unknown> {
  readonly [MODULE_REF]: true;
  readonly module: string;
  readonly export: string;
  /** Type-only: the signature of the referenced function. */
  readonly __signature?: F;
}

/**
 * A function given by module reference instead of by source: workers `import(module)` and call
 * `export`. A relative specifier (`./tasks.js`) is resolved against the client's working
 * directory when such a file exists there, so workers on the same machine find it.
 */
export function ref<F extends (...args: any[]) => unknown = (...args: any[]) => unknown>(
  moduleSpecifier: string,
  exportName = 'default',
): ModuleFunction<F> {
  if (typeof moduleSpecifier !== 'string' || moduleSpecifier === '') {
    throw new TypeError('ref(moduleSpecifier, exportName): moduleSpecifier must be a non-empty string');
  }
  if (typeof exportName !== 'string' || exportName === '') {
    throw new TypeError('ref(moduleSpecifier, exportName): exportName must be a non-empty string');
  }
  let module = moduleSpecifier;
  if ((module.startsWith('./') || module.startsWith('../')) && !isAbsolute(module)) {
    const abs = resolve(module);
    if (existsSync(abs)) module = abs;
  }
  return Object.freeze({ [MODULE_REF]: true as const, module, export: exportName });
}

export function isModuleFunction(value: unknown): value is ModuleFunction {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MODULE_REF] === true;
}

/** Anything `submit`/`map` accept as the function to run. */
export type Runnable = ((...args: any[]) => unknown) | ModuleFunction;

// Function objects are usually submitted many times (map): convert each once.
const cache = new WeakMap<object, FunctionRef>();

/** The FunctionRef for `fn`; throws FunctionSerializationError for what cannot travel. */
export function toFunctionRef(fn: Runnable): FunctionRef {
  if (isModuleFunction(fn)) return { kind: 'module', module: fn.module, export: fn.export };
  if (typeof fn !== 'function') {
    throw new TypeError(`expected a function or ref(module, export), got ${typeOfValue(fn)}`);
  }
  const cached = cache.get(fn);
  if (cached !== undefined) return cached;
  const source = functionSource(fn);
  const out: FunctionRef = {
    kind: 'source',
    name: functionName(fn),
    source,
    hash: createHash('md5').update(source).digest('hex'),
  };
  cache.set(fn, out);
  return out;
}

/** A short name for keys: the function's name, or `lambda`. */
export function functionName(fn: Runnable): string {
  if (isModuleFunction(fn)) return sanitize(fn.export === 'default' ? baseName(fn.module) : fn.export);
  return sanitize(fn.name) || 'lambda';
}

function baseName(specifier: string): string {
  const last = specifier.split(/[\\/]/).pop() ?? specifier;
  return last.replace(/\.[cm]?[jt]s$/, '');
}

function sanitize(name: string): string {
  return name.replace(/^bound /, '').replace(/[^A-Za-z0-9_.$-]/g, '_').slice(0, 64);
}

/**
 * The source text of `fn` as a JavaScript expression that evaluates to the function:
 * function declarations/expressions, arrows, async and generator functions and classes as
 * they are; method shorthand (`foo(a) {...}`, `async *bar() {...}`) turned into a function
 * expression. Bound and native functions cannot travel.
 */
export function functionSource(fn: (...args: any[]) => unknown): string {
  const text = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
    const bound = fn.name.startsWith('bound ');
    throw new FunctionSerializationError(
      `cannot send ${bound ? 'a bound' : 'a native'} function (${fn.name || 'anonymous'}) to workers: ` +
        `its source is not available. ${bound ? 'Pass the bound values as arguments instead of using bind(), or' : 'Wrap it in a function of your own, or'} ` +
        `use ref(moduleSpecifier, exportName) to name a function exported by a module the workers can import.`,
    );
  }
  if (parses(text)) return text;
  const converted = convertMethod(text);
  if (converted !== undefined && parses(converted)) return converted;
  throw new FunctionSerializationError(
    `cannot send function ${fn.name || '(anonymous)'} to workers: its source is not a function expression ` +
      `(getters, setters and methods using super cannot travel by source). Use a plain function, or ` +
      `ref(moduleSpecifier, exportName).`,
  );
}

function parses(source: string): boolean {
  try {
    // Compiles only (the body of the outer function never runs).
    new Function(`return (${source}\n);`);
    return true;
  } catch {
    return false;
  }
}

// Method shorthand forms: name(...), async name(...), *name(...), async *name(...),
// 'quoted'(...), [computed](...), 123(...).
const METHOD = /^(async\s+)?(\*\s*)?(?:([A-Za-z_$][\w$]*)|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\d+)\s*\(/;

function convertMethod(text: string): string | undefined {
  if (/^(get|set|static)\s/.test(text)) return undefined;
  const m = METHOD.exec(text);
  if (m === null) return undefined;
  const isAsync = m[1] !== undefined;
  const isGen = m[2] !== undefined;
  const ident = m[3];
  const name = ident !== undefined && !RESERVED.has(ident) ? ident : '';
  return `${isAsync ? 'async ' : ''}function${isGen ? '*' : ''} ${name}(${text.slice(m[0].length)}`;
}

const RESERVED = new Set([
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else',
  'export', 'extends', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new', 'return',
  'super', 'switch', 'this', 'throw', 'try', 'typeof', 'var', 'void', 'while', 'with', 'yield', 'let',
  'static', 'enum', 'await', 'implements', 'package', 'protected', 'interface', 'private', 'public', 'null',
  'true', 'false', 'arguments', 'eval',
]);
