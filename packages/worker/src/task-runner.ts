// Runs one task: decode its js run spec, put dependency values where its KeyRefs are, load its
// function (by source, compiled once per hash and cached; or by module reference, imported once),
// call it, await it if it returned a promise. Used by both executors: in each thread of the
// thread pool, and on the main event loop for `executor: 'inline'`.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as vm from 'node:vm';
import { checkSendable, decodeTaskCall, SerializationError, type FunctionRef, type Key, type WireError, type WireRunSpec } from '@dd/protocol';
import { ClosureVariableError } from './errors';
import { sizeof } from './sizeof';
import { runAsTaskOf, type TaskWorker } from './task-context';
import { typeName } from './type-name';

export type TaskOutcome =
  | { ok: true; value: unknown; nbytes: number; type: string; start: number; stop: number }
  | { ok: false; error: WireError; start: number; stop: number };

export interface TaskRunnerOptions {
  /** Directory that relative module specifiers and `require` inside functions resolve against. */
  cwd: string;
  /** Where uploaded modules are (client.uploadFile): a bare specifier naming one resolves there first. */
  uploadDirectory?: string;
}

type AnyFn = (...args: unknown[]) => unknown;

export class TaskRunner {
  private readonly sourceCache = new Map<string, AnyFn>();
  private readonly moduleCache = new Map<string, AnyFn>();
  private readonly require: NodeJS.Require;
  private readonly cwd: string;
  private readonly uploadDirectory: string | undefined;
  /** The worker that tasks run by this runner see through getWorker() (task-context.ts), once known. */
  taskWorker: TaskWorker | undefined;
  /** The latest stop reported (ms since the epoch, fractional). */
  private lastStop = 0;

  constructor(options: TaskRunnerOptions) {
    this.cwd = path.resolve(options.cwd);
    this.uploadDirectory = options.uploadDirectory;
    // createRequire wants a file path; the file need not exist.
    this.require = createRequire(path.join(this.cwd, '__dd_worker__.js'));
  }

  /** Decodes, substitutes, loads and runs; never throws (failures become `{ok: false}`). */
  async run(spec: WireRunSpec, deps: Record<Key, unknown> | Map<Key, unknown>): Promise<TaskOutcome> {
    // The duration comes from the monotonic clock: with Date.now() alone a task under a
    // millisecond measured 0 (or 1) ms, and the scheduler's estimates for tiny tasks (occupancy,
    // stealing) decayed to 0. The start is wall-clock (whole ms), and not before the stop just
    // recorded: with fractional stops, tasks that ran one after another would otherwise seem to
    // overlap by up to 1 ms (task-stream rows). Neither moves an interval past the real one. (Only
    // within that millisecond: after the wall clock is set back, starts follow the clock again.)
    const now = Date.now();
    const start = this.lastStop > now && this.lastStop - now < 1 ? this.lastStop : now;
    const t0 = performance.now();
    let fnRef: FunctionRef | undefined;
    try {
      const lookup = deps instanceof Map ? (k: Key) => deps.get(k) : (k: Key) => deps[k];
      const task = decodeTaskCall(spec, lookup);
      fnRef = task.fn;
      const fn = await this.load(task.fn);
      const args = task.args;
      const worker = this.taskWorker;
      let value = worker === undefined ? fn(...args) : runAsTaskOf(worker, () => fn(...args));
      if (isThenable(value)) value = await value;
      const stop = this.stopped(start, t0);
      if (typeof value === 'object' && value !== null) checkResultSendable(value);
      return { ok: true, value, nbytes: sizeof(value), type: typeName(value), start, stop };
    } catch (err) {
      return { ok: false, error: this.toWireError(err, fnRef), start, stop: this.stopped(start, t0) };
    }
  }

  private stopped(start: number, t0: number): number {
    const stop = start + (performance.now() - t0);
    if (stop > this.lastStop) this.lastStop = stop;
    return stop;
  }

  /** The function a FunctionRef names. */
  async load(ref: FunctionRef): Promise<AnyFn> {
    if (ref.kind === 'source') {
      const cached = this.sourceCache.get(ref.hash);
      if (cached) return cached;
      const fn = this.compile(ref);
      this.sourceCache.set(ref.hash, fn);
      return fn;
    }
    if (ref.kind === 'module') {
      const id = `${ref.module}\0${ref.export}`;
      const cached = this.moduleCache.get(id);
      if (cached) return cached;
      const fn = await this.importFunction(ref.module, ref.export);
      this.moduleCache.set(id, fn);
      return fn;
    }
    throw new TypeError(`unknown function reference kind ${JSON.stringify((ref as { kind: unknown }).kind)}`);
  }

  /** The `require` task functions see: the worker directory's, uploaded modules first by bare name. */
  private taskRequire(): NodeJS.Require {
    const dir = this.uploadDirectory;
    const base = this.require;
    if (dir === undefined) return base;
    const req = ((id: string) => base(uploadedModule(dir, id) ?? id)) as NodeJS.Require;
    const resolve = ((id: string, options?: { paths?: string[] }) => base.resolve(uploadedModule(dir, id) ?? id, options)) as NodeJS.RequireResolve;
    resolve.paths = base.resolve.paths;
    return Object.assign(req, { resolve, cache: base.cache, main: base.main, extensions: base.extensions });
  }

  /** Forgets functions loaded from modules (an uploaded module changed): the next use loads them again. */
  forgetModules(): void {
    this.moduleCache.clear();
  }

  /** File name given to compiled source: shows in stacks, and anchors relative import(). */
  taskFilename(ref: { name: string; hash: string }): string {
    return path.join(this.cwd, `dd-task-${ref.name.replace(/[^A-Za-z0-9_.$-]/g, '_')}-${ref.hash}.js`);
  }

  private compile(ref: { name: string; source: string; hash: string }): AnyFn {
    const filename = this.taskFilename(ref);
    const mod = { exports: {} };
    const attempt = (expr: string): AnyFn => {
      // The function sees a `require` for the worker's directory, like a module there would.
      const wrapper = `(function (require, module, exports, __filename, __dirname) { return (${expr}\n); })`;
      const script = new vm.Script(wrapper, {
        filename,
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      } as vm.ScriptOptions);
      const factory = script.runInThisContext() as AnyFn;
      return factory(this.taskRequire(), mod, mod.exports, filename, this.cwd) as AnyFn;
    };
    let fn: unknown;
    try {
      fn = attempt(ref.source);
    } catch (err) {
      // Method shorthand (`inc(x) { ... }`) is not an expression on its own.
      if ((err as Error)?.name !== 'SyntaxError') throw err;
      fn = attempt(`({ ${ref.source} \n})[${JSON.stringify(ref.name)}]`);
    }
    if (typeof fn !== 'function') throw new TypeError(`the source of task function ${ref.name} is not a function`);
    return callable(fn as AnyFn);
  }

  private async importFunction(specifier: string, exportName: string): Promise<AnyFn> {
    const mod = await this.importModule(specifier);
    let fn = exportName === 'default' ? (mod.default ?? mod) : mod[exportName];
    if (fn === undefined && exportName !== 'default' && typeof mod.default === 'object' && mod.default !== null) {
      fn = (mod.default as Record<string, unknown>)[exportName]; // CommonJS seen through import()
    }
    if (typeof fn !== 'function') {
      throw new TypeError(`module ${JSON.stringify(specifier)} has no function export ${JSON.stringify(exportName)}`);
    }
    return callable(fn as AnyFn);
  }

  /**
   * A module by specifier, as task functions by module reference find it: a path (relative to
   * cwd), an uploaded module, or a package resolved from cwd; CommonJS by require, ES modules by
   * import().
   */
  async importModule(specifier: string): Promise<Record<string, unknown>> {
    const resolved = specifier.startsWith('.') || path.isAbsolute(specifier)
      ? path.resolve(this.cwd, specifier)
      : (uploadedModule(this.uploadDirectory, specifier) ?? specifier);
    let mod: Record<string, unknown>;
    try {
      mod = this.require(resolved) as Record<string, unknown>;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
      // An ES module: import() it (resolving bare specifiers from the worker's directory).
      const url = path.isAbsolute(resolved) ? pathToFileURL(resolved).href : pathToFileURL(this.require.resolve(resolved)).href;
      mod = (await dynamicImport(url)) as Record<string, unknown>;
    }
    return mod;
  }

  /** A thrown value as a WireError; a closure variable ReferenceError becomes ClosureVariableError. */
  toWireError(err: unknown, fnRef?: FunctionRef): WireError {
    if (fnRef?.kind === 'source' && isError(err) && err.name === 'ReferenceError') {
      const m = /^(\S+) is not defined$/.exec(err.message);
      const firstFrame = (err.stack ?? '').split('\n').find((l) => /^\s+at /.test(l)) ?? '';
      if (m?.[1] && firstFrame.includes(this.taskFilename(fnRef))) {
        const replaced = new ClosureVariableError(fnRef.name, m[1], { cause: err });
        // Keep the remote stack of where it happened.
        replaced.stack = `${replaced.name}: ${replaced.message}\n${(err.stack ?? '').split('\n').slice(1).join('\n')}`;
        return wireError(replaced);
      }
    }
    return wireError(err);
  }
}

/**
 * A class runs as its constructor (`new C(...args)`, the instance is the result), as calling a
 * class does in the reference; called plainly it would only throw "cannot be invoked without 'new'".
 * So does a native constructor such as `Map` (by module reference), once its call says it needs `new`.
 */
function callable(fn: AnyFn): AnyFn {
  const source = Function.prototype.toString.call(fn);
  if (/^class\b/.test(source)) {
    const Class = fn as unknown as new (...args: unknown[]) => unknown;
    return (...args: unknown[]) => new Class(...args);
  }
  if (/\{\s*\[native code\]\s*\}$/.test(source)) return constructedIfNeeded(fn);
  return fn;
}

/**
 * A native function, called plainly, and constructed instead if that call throws V8's TypeError
 * for a constructor called without `new`. Its source text is `function Map() { [native code] }`
 * for a constructor and for a callable such as `Number` alike, so only the call tells them apart
 * (`Number('5')` stays 5, not a Number object). V8 throws that error on entry, before the
 * constructor runs any code, so nothing runs twice.
 */
function constructedIfNeeded(fn: AnyFn): AnyFn {
  const Constructor = fn as unknown as new (...args: unknown[]) => unknown;
  // A `function`, not an arrow: the `run` rpc calls it with the Worker as `this`.
  return function (this: unknown, ...args: unknown[]): unknown {
    try {
      return Reflect.apply(fn, this, args);
    } catch (err) {
      if (!requiresNew(err, fn)) throw err;
    }
    return new Constructor(...args);
  };
}

/** V8's messages for a constructor called without `new`; each captures the name it gives. */
const REQUIRES_NEW_MESSAGES = [
  /^Constructor (\S*) requires 'new'$/, // Map, Set, typed arrays, Intl.Locale
  /^Class constructor (\S*) cannot be invoked without 'new'$/, // a bound class (native by its text)
  /^(\S+) constructor cannot be invoked without 'new'$/, // Promise
];

/**
 * Whether `err` is V8's TypeError for calling `fn` itself without `new`. The name in the message
 * must be fn's: a native that runs other code (a bound function of the task's own, Array.from with
 * a mapper) may only pass on that error from a constructor called inside, and constructing fn
 * then would run that code a second time.
 */
function requiresNew(err: unknown, fn: AnyFn): boolean {
  // By name, not instanceof: under jest the error comes from another realm.
  if (!isError(err) || err.name !== 'TypeError') return false;
  const named = REQUIRES_NEW_MESSAGES.map((re) => re.exec(err.message)?.[1]).find((name) => name !== undefined);
  if (named === undefined) return false;
  const ownName = fn.name.replace(/^(bound )+/, ''); // bound Map is named "bound Map", its error "Map"
  return named.split('.').pop() === ownName; // Intl.Locale is named "Locale"
}

/** A result that could not leave this worker fails its task now rather than its first transfer. */
function checkResultSendable(value: object): void {
  try {
    checkSendable(value);
  } catch (err) {
    throw new SerializationError(`the task's result cannot be sent to other workers or clients: ${(err as Error).message}`);
  }
}

export function wireError(err: unknown): WireError {
  if (isError(err)) {
    const out: WireError = { name: err.name || 'Error', message: String(err.message) };
    if (typeof err.stack === 'string') out.stack = err.stack;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    return out;
  }
  return { name: 'Error', message: `task threw a non-Error value: ${safeString(err)}` };
}

function isError(err: unknown): err is Error {
  return typeof err === 'object' && err !== null && typeof (err as Error).message === 'string' && typeof (err as Error).name === 'string';
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}

/** The uploaded file (or directory) a bare specifier names, if there is one. */
function uploadedModule(dir: string | undefined, specifier: string): string | undefined {
  if (dir === undefined || specifier.startsWith('node:')) return undefined;
  const first = specifier.split('/')[0]!;
  if (!['', '.js', '.cjs', '.mjs'].some((ext) => existsSync(path.join(dir, first + ext)))) return undefined;
  return path.join(dir, specifier);
}

// A real import() even where the compiler or a test transform would turn it into require().
const dynamicImport = new Function('u', 'return import(u)') as (u: string) => Promise<unknown>;
