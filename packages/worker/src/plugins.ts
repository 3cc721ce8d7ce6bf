// Worker plugins (the reference's WorkerPlugin): objects with optional `setup(worker)`,
// `teardown(worker)` and `transition(key, start, finish, info)`, sent by clients through the
// scheduler (`plugin-add {name, plugin}`; a worker that joins later gets the registered ones in
// the reply to its `register-worker` and installs them with installAll before it reads its
// stream, so before any task) and kept by name; a plugin added under a name in use replaces the
// old one (torn down first). Wire forms:
//
//   {kind: 'source', methods: {name: FunctionRef}, data: {...}}   an object rebuilt here: its
//        data properties plus its methods compiled from source (`this` is the object)
//   {kind: 'module', module, export}    a class (constructed) or factory function (called) that
//        makes the plugin, imported like a task function
//   {kind: 'upload', filename, data | files}    a file (or a directory: relative path -> bytes)
//        saved in the upload directory (uploads.ts)
//
// A plugin that throws (in setup, transition or teardown) is logged and reported; the worker goes
// on. Hooks run on the worker's main thread; transition runs inside the state machine: keep it
// cheap and change nothing.

import type { FunctionRef, Key, StimulusId, WireError } from '@dd/protocol';
import type { TaskRunner } from './task-runner';
import { saveUpload } from './uploads';

export interface WorkerPlugin {
  setup?(worker: unknown): unknown;
  teardown?(worker: unknown): unknown;
  transition?(key: Key, start: string, finish: string, info: { stimulusId: StimulusId }): void;
  [field: string]: unknown;
}

export type PluginSpec =
  | { kind: 'source'; methods: Record<string, FunctionRef>; data?: Record<string, unknown> }
  | { kind: 'module'; module: string; export: string }
  | { kind: 'upload'; filename: string; data?: Uint8Array; files?: Record<string, Uint8Array> };

export type PluginReply = { status: 'OK' } | { status: 'error'; exception: WireError };

export interface WorkerPluginsHost {
  /** What setup/teardown receive: the Worker. */
  readonly worker: object;
  /** Loads functions (by source or module) like task functions, on the main thread. */
  runner(): TaskRunner;
  uploadDirectory(): string | undefined;
  /** Installs (or with null removes) the worker state machine's transition hook. */
  setTransitionHook(hook: ((key: Key, start: string, finish: string, stimulusId: StimulusId) => void) | null): void;
  readonly logger: { warn(msg: string, ...rest: unknown[]): void };
}

export class WorkerPlugins {
  private readonly plugins = new Map<string, WorkerPlugin>();
  /** add/remove one at a time, in arrival order. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly host: WorkerPluginsHost) {}

  readonly handlers = {
    'plugin-add': (msg: { name?: unknown; plugin?: unknown }) => this.serial(() => this.add(msg.name, msg.plugin)),
    'plugin-remove': (msg: { name?: unknown }) => this.serial(() => this.remove(msg.name)),
  };

  /**
   * Adds plugins in order (those of the scheduler's `register-worker` reply), one at a time;
   * resolves when every one is set up (or failed: logged, and reported in the result).
   */
  async installAll(entries: ReadonlyArray<{ name?: unknown; plugin?: unknown }>): Promise<Record<string, PluginReply>> {
    const out: Record<string, PluginReply> = {};
    for (const e of entries) out[String(e?.name)] = await this.serial(() => this.add(e?.name, e?.plugin));
    return out;
  }

  get names(): string[] {
    return [...this.plugins.keys()];
  }

  get(name: string): WorkerPlugin | undefined {
    return this.plugins.get(name);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async add(name: unknown, spec: unknown): Promise<PluginReply> {
    try {
      if (typeof name !== 'string' || name === '') throw new TypeError('plugin-add: field "name" must be a non-empty string');
      if (this.closed) throw new Error('the worker is closing');
      const s = spec as PluginSpec;
      if (typeof s !== 'object' || s === null) throw new TypeError('plugin-add: field "plugin" must be an object');
      if (s.kind === 'upload') {
        const dir = this.host.uploadDirectory();
        if (dir === undefined) throw new Error('the worker has no local directory yet');
        await saveUpload(dir, s.filename, s.data, this.host.runner(), s.files);
        return { status: 'OK' };
      }
      const plugin = await this.instantiate(s);
      await this.teardown(name);
      this.plugins.set(name, plugin);
      this.updateTransitionHook();
      if (typeof plugin.setup === 'function') await plugin.setup(this.host.worker);
      return { status: 'OK' };
    } catch (err) {
      this.host.logger.warn(`worker plugin ${String(name)} failed to set up: ${(err as Error)?.message ?? err}`);
      return { status: 'error', exception: this.host.runner().toWireError(err) };
    }
  }

  private async remove(name: unknown): Promise<PluginReply> {
    if (typeof name !== 'string') return { status: 'error', exception: { name: 'TypeError', message: 'plugin-remove: field "name" must be a string' } };
    try {
      await this.teardown(name);
      return { status: 'OK' };
    } catch (err) {
      return { status: 'error', exception: this.host.runner().toWireError(err) };
    }
  }

  /** Tears down every plugin (the worker is closing); errors are logged. */
  async close(): Promise<void> {
    this.closed = true;
    await this.serial(async () => {
      for (const name of [...this.plugins.keys()]) await this.teardown(name);
    });
  }

  private async teardown(name: string): Promise<void> {
    const old = this.plugins.get(name);
    if (old === undefined) return;
    this.plugins.delete(name);
    this.updateTransitionHook();
    if (typeof old.teardown !== 'function') return;
    try {
      await old.teardown(this.host.worker);
    } catch (err) {
      this.host.logger.warn(`worker plugin ${name} failed to tear down: ${(err as Error)?.message ?? err}`);
    }
  }

  private async instantiate(spec: PluginSpec): Promise<WorkerPlugin> {
    const runner = this.host.runner();
    if (spec.kind === 'source') {
      if (typeof spec.methods !== 'object' || spec.methods === null) throw new TypeError('plugin-add: a source plugin needs "methods"');
      const obj: WorkerPlugin = { ...(spec.data ?? {}) };
      for (const [method, ref] of Object.entries(spec.methods)) obj[method] = await runner.load(ref);
      return obj;
    }
    if (spec.kind === 'module') {
      const make = await runner.load({ kind: 'module', module: spec.module, export: spec.export });
      const isClass = /^class[\s{]/.test(Function.prototype.toString.call(make));
      const made = isClass ? new (make as unknown as new () => unknown)() : await make();
      if (typeof made !== 'object' || made === null) {
        throw new TypeError(`plugin ${spec.module}#${spec.export} made ${made === null ? 'null' : typeof made}, not a plugin object`);
      }
      return made as WorkerPlugin;
    }
    throw new TypeError(`plugin-add: unknown plugin kind ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
  }

  private updateTransitionHook(): void {
    const listeners = [...this.plugins].filter(([, p]) => typeof p.transition === 'function');
    this.host.setTransitionHook(
      listeners.length === 0
        ? null
        : (key, start, finish, stimulusId) => {
            for (const [name, p] of listeners) {
              try {
                p.transition!(key, start, finish, { stimulusId });
              } catch (err) {
                this.host.logger.warn(`worker plugin ${name}: transition failed: ${(err as Error)?.message ?? err}`);
              }
            }
          },
    );
  }
}
