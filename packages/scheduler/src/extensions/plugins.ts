// Plugins (the reference's "Scheduler Plugins" and "Worker Plugins").
//
// Scheduler plugins run in the scheduler's process: objects with optional hooks, added with
// `scheduler.addPlugin(plugin)` (or by a module given to `dd-scheduler --preload`). Hooks see the
// scheduler after the state machine handled the event (transition: right after each transition,
// from inside the state machine). A hook that throws (or rejects) is logged; the scheduler and the
// other plugins go on.
//
// Worker plugins are kept here for workers: `register-worker-plugin {name, plugin}` stores the
// plugin's wire form (opaque to the scheduler: by source or by module reference, built by the
// client) and sends `plugin-add` to every worker. A worker that joins later gets them all in the
// reply to its `register-worker` (workerPluginEntries), and installs them before it runs any
// task. Uploaded files (uploadFile) travel the same way, as plugins of kind `upload`.

import type { Address, Key, StimulusId, TaskDefinition, WireError, WorkerPluginEntry } from '@dd/protocol';
import type { SchedulerEvent } from '../events';
import type { ClusterHost } from './cluster-host';
import { str, type ExtensionMsg, type SchedulerExtension } from './extension';

export interface UpdateGraphInfo {
  client: string;
  /** Keys the client wants. */
  keys: Key[];
  tasks: readonly TaskDefinition[];
  stimulusId: StimulusId;
}

/** A scheduler plugin: implement the hooks you need. `scheduler` is the Scheduler. */
export interface SchedulerPlugin {
  /** Used by removePlugin; a plugin added under a name in use replaces the old one. */
  name?: string;
  /** When the plugin is added (the scheduler is running). */
  start?(scheduler: unknown): void | Promise<void>;
  updateGraph?(scheduler: unknown, info: UpdateGraphInfo): void;
  /** After each task transition (runs inside the state machine: keep it cheap, change nothing). */
  transition?(key: Key, start: string, finish: string, info: { stimulusId: StimulusId }): void;
  addWorker?(scheduler: unknown, worker: Address): void;
  removeWorker?(scheduler: unknown, worker: Address): void;
  addClient?(scheduler: unknown, client: string): void;
  removeClient?(scheduler: unknown, client: string): void;
  /** When the scheduler closes (not awaited). */
  close?(): void | Promise<void>;
}

type WorkerReply = { status: 'OK' } | { status: 'error'; exception: WireError };

export class PluginsExtension implements SchedulerExtension {
  readonly name = 'plugins';
  private readonly plugins = new Map<string, SchedulerPlugin>();
  private readonly workerPlugins = new Map<string, WorkerPluginEntry>();
  private readonly knownWorkers = new Set<Address>();
  private readonly knownClients = new Set<string>();
  private unnamed = 0;

  constructor(
    private readonly host: ClusterHost,
    /** What hooks receive as `scheduler`. */
    private readonly scheduler: unknown,
  ) {
    for (const a of host.state.workers.keys()) this.knownWorkers.add(a);
    host.addObserver({ onStimuli: (events) => this.observe(events), onClose: () => this.close() });
  }

  // -------------------------------------------------------------------------------------------
  // Scheduler plugins

  /** Adds (or, by name, replaces) a plugin; resolves after its start hook. Returns its name. */
  async add(plugin: SchedulerPlugin, name?: string): Promise<string> {
    if (typeof plugin !== 'object' || plugin === null) throw new TypeError('addPlugin(plugin): expected an object with hook methods');
    const id = name ?? plugin.name ?? `plugin-${++this.unnamed}`;
    if (this.plugins.has(id)) this.remove(id);
    this.plugins.set(id, plugin);
    this.updateTransitionHook();
    if (typeof plugin.start === 'function') await this.call(id, 'start', () => plugin.start!(this.scheduler));
    return id;
  }

  remove(name: string): boolean {
    const ok = this.plugins.delete(name);
    this.updateTransitionHook();
    return ok;
  }

  get names(): string[] {
    return [...this.plugins.keys()];
  }

  private updateTransitionHook(): void {
    const listeners = [...this.plugins].filter(([, p]) => typeof p.transition === 'function');
    this.host.state.transitionHook = listeners.length === 0
      ? null
      : (key, start, finish, stimulusId) => {
          for (const [id, p] of listeners) this.callSync(id, 'transition', () => p.transition!(key, start, finish, { stimulusId }));
        };
  }

  private observe(events: readonly SchedulerEvent[]): void {
    const state = this.host.state;
    for (const ev of events) {
      switch (ev.kind) {
        case 'update-graph':
          this.each('updateGraph', (p) => p.updateGraph?.(this.scheduler, { client: ev.client, keys: ev.keys, tasks: ev.tasks, stimulusId: ev.stimulusId }));
          break;
        case 'add-worker':
          if (state.workers.has(ev.address) && !this.knownWorkers.has(ev.address)) {
            this.knownWorkers.add(ev.address);
            this.each('addWorker', (p) => p.addWorker?.(this.scheduler, ev.address));
          }
          break;
        case 'remove-worker':
          if (!state.workers.has(ev.address) && this.knownWorkers.delete(ev.address)) {
            this.each('removeWorker', (p) => p.removeWorker?.(this.scheduler, ev.address));
          }
          break;
        case 'add-client':
          if (!this.knownClients.has(ev.client)) {
            this.knownClients.add(ev.client);
            this.each('addClient', (p) => p.addClient?.(this.scheduler, ev.client));
          }
          break;
        case 'remove-client':
          if (this.knownClients.delete(ev.client)) this.each('removeClient', (p) => p.removeClient?.(this.scheduler, ev.client));
          break;
        default:
          break;
      }
    }
  }

  private close(): void {
    this.host.state.transitionHook = null;
    this.each('close', (p) => p.close?.());
  }

  private each(hook: string, fn: (p: SchedulerPlugin) => unknown): void {
    for (const [id, p] of this.plugins) this.callSync(id, hook, () => fn(p));
  }

  private callSync(id: string, hook: string, fn: () => unknown): void {
    try {
      const r = fn();
      if (isThenable(r)) r.then(undefined, (err: unknown) => this.host.logger.error(`scheduler plugin ${id}: ${hook} failed`, err));
    } catch (err) {
      this.host.logger.error(`scheduler plugin ${id}: ${hook} failed`, err);
    }
  }

  private async call(id: string, hook: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.host.logger.error(`scheduler plugin ${id}: ${hook} failed`, err);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Worker plugins (and uploaded files)

  readonly handlers = {
    /** `{name, plugin}` -> `{ [address]: {status: 'OK'} | {status: 'error', exception} }` of the current workers. */
    'register-worker-plugin': (m: ExtensionMsg) => this.registerWorkerPlugin(m),
    'unregister-worker-plugin': (m: ExtensionMsg) => this.unregisterWorkerPlugin(m),
  };

  private async registerWorkerPlugin(m: ExtensionMsg): Promise<Record<Address, WorkerReply>> {
    const op = 'register-worker-plugin';
    const name = str(m, 'name', op);
    const plugin = m['plugin'];
    if (typeof plugin !== 'object' || plugin === null) throw new TypeError(`${op}: field "plugin" must be an object`);
    // Replacing keeps the original position (order of setup on new workers).
    this.workerPlugins.set(name, { name, plugin });
    return await this.toWorkers([...this.host.state.workers.keys()], 'plugin-add', { name, plugin });
  }

  private async unregisterWorkerPlugin(m: ExtensionMsg): Promise<Record<Address, WorkerReply>> {
    const name = str(m, 'name', 'unregister-worker-plugin');
    this.workerPlugins.delete(name);
    return await this.toWorkers([...this.host.state.workers.keys()], 'plugin-remove', { name });
  }

  /**
   * Every registered worker plugin, in registration order: the scheduler puts them in its reply
   * to `register-worker`, taken in the same step as the worker joins the state. So a plugin is
   * either in the reply or, registered afterwards, sent to the worker (now in the state) as
   * `plugin-add`: never both, never neither.
   */
  workerPluginEntries(): WorkerPluginEntry[] {
    return [...this.workerPlugins.values()].map((e) => ({ name: e.name, plugin: e.plugin }));
  }

  private async toWorkers(addresses: Address[], op: string, args: Record<string, unknown>): Promise<Record<Address, WorkerReply>> {
    const out: Record<Address, WorkerReply> = {};
    await Promise.all(
      addresses.map(async (a) => {
        try {
          const reply = await this.host.callWorker<WorkerReply>(a, op, args);
          out[a] = reply?.status === 'OK' || reply?.status === 'error' ? reply : { status: 'error', exception: { name: 'Error', message: `malformed ${op} reply` } };
        } catch (err) {
          const e = err as Error & { remoteName?: string; remoteMessage?: string };
          out[a] = { status: 'error', exception: { name: e?.remoteName ?? e?.name ?? 'Error', message: e?.remoteMessage ?? e?.message ?? String(err) } };
        }
      }),
    );
    return out;
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}
