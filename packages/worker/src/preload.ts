// Worker preloads (`dd-worker --preload MODULE`, the reference's dask_setup for workers): a
// module exporting `ddSetup(worker)` (or a default function) is imported the way task modules
// are and called once the worker listens, before it registers with the scheduler, e.g. to open
// a connection pool or warm a cache that tasks reach through getWorker(). `ddTeardown(worker)`,
// if exported, runs when the worker closes.

import { PreloadError } from './errors';
import type { TaskRunner } from './task-runner';

type Hook = (worker: object) => unknown;

/** Runs each module's setup in order; returns their teardowns (to run at close, in reverse). */
export async function runPreloads(worker: object, specifiers: readonly string[], runner: TaskRunner): Promise<Array<{ specifier: string; teardown: Hook }>> {
  const teardowns: Array<{ specifier: string; teardown: Hook }> = [];
  for (const specifier of specifiers) {
    let mod: Record<string, unknown>;
    try {
      mod = await runner.importModule(specifier);
    } catch (err) {
      throw new PreloadError(`preload module ${JSON.stringify(specifier)} could not be loaded: ${(err as Error).message}`, { cause: err });
    }
    const def = mod['default'] as Record<string, unknown> | Hook | undefined;
    const setup = (mod['ddSetup'] ?? (typeof def === 'function' ? def : def?.['ddSetup'])) as Hook | undefined;
    const teardown = (mod['ddTeardown'] ?? (typeof def === 'object' && def !== null ? def['ddTeardown'] : undefined)) as Hook | undefined;
    if (typeof setup !== 'function') {
      throw new PreloadError(`preload module ${JSON.stringify(specifier)} exports no ddSetup(worker) function (nor a default function)`);
    }
    try {
      await setup(worker);
    } catch (err) {
      throw new PreloadError(`preload module ${JSON.stringify(specifier)}: ddSetup failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    if (typeof teardown === 'function') teardowns.push({ specifier, teardown });
  }
  return teardowns.reverse();
}
