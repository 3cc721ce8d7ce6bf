// `run`: a function called on the worker itself, outside the task system (the reference's
// Client.run): on the worker's main thread, by source or by module reference like a task's
// function, with the Worker as `this` (a `function`, not an arrow, can read it). The reply
// carries the result or the error, so that the scheduler can tell a failing function from an
// unreachable worker. Also `versions`.

import { decodeTaskSpec, type FunctionRef, type WireError, type WireRunSpec } from '@dd/protocol';
import { adoptFromHost, foreignRealm } from './realm';
import { TaskRunner } from './task-runner';

export type RunReply = { status: 'OK'; result: unknown } | { status: 'error'; exception: WireError };

export interface WorkerRunHost {
  /** What `this` is inside the function: the Worker. */
  readonly worker: object;
  /** Directory that relative module specifiers and `require` resolve against. */
  cwd(): string;
  /** Where uploaded modules are (bare specifiers are looked up there first), once known. */
  uploadDirectory(): string | undefined;
}

const DD_VERSION = (require('../package.json') as { version: string }).version;

export function workerVersions(): Record<string, string> {
  return { dd: DD_VERSION, node: process.versions.node, v8: process.versions.v8, platform: process.platform, arch: process.arch };
}

export class WorkerRun {
  private runner: TaskRunner | undefined;

  constructor(private readonly host: WorkerRunHost) {}

  readonly handlers = {
    run: (msg: { spec?: WireRunSpec }) => this.run(msg.spec),
    versions: () => workerVersions(),
  };

  /** The runner for functions on the main thread (created once the upload directory is known). */
  taskRunner(): TaskRunner {
    if (this.runner === undefined) {
      const uploadDirectory = this.host.uploadDirectory();
      this.runner = new TaskRunner({ cwd: this.host.cwd(), ...(uploadDirectory !== undefined ? { uploadDirectory } : {}) });
    }
    return this.runner;
  }

  async run(spec: WireRunSpec | undefined): Promise<RunReply> {
    let fnRef: FunctionRef | undefined;
    const runner = this.taskRunner();
    try {
      if (typeof spec !== 'object' || spec === null) throw new TypeError('run: field "spec" must be a run spec');
      const task = decodeTaskSpec(spec);
      fnRef = task.fn;
      const fn = await runner.load(task.fn);
      let result = fn.apply(this.host.worker, task.args);
      if (isThenable(result)) result = await result;
      // Functions are compiled in the host realm: under jest, adopt their results (no-op otherwise).
      return { status: 'OK', result: foreignRealm ? adoptFromHost(result) : result };
    } catch (err) {
      return { status: 'error', exception: runner.toWireError(err, fnRef) };
    }
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}
