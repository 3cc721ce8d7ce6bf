// Preload modules (`dd-scheduler --preload MODULE`, the reference's dask_setup): a module that
// exports `ddSetup(scheduler)` (or a default function) is imported and called once the scheduler
// runs, typically to add plugins; `ddTeardown(scheduler)`, if exported, runs when it closes.

import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Scheduler } from './scheduler';

type Setup = (scheduler: Scheduler) => unknown;

/** Imports `specifier` (a path, relative to `cwd`, or a package name) and runs its setup. */
export async function preload(scheduler: Scheduler, specifier: string, cwd = process.cwd()): Promise<void> {
  const req = createRequire(path.join(path.resolve(cwd), '__dd_preload__.js'));
  const resolved = specifier.startsWith('.') || path.isAbsolute(specifier) ? path.resolve(cwd, specifier) : specifier;
  let mod: Record<string, unknown>;
  try {
    mod = req(resolved) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
    mod = (await dynamicImport(pathToFileURL(req.resolve(resolved)).href)) as Record<string, unknown>;
  }
  const def = mod['default'] as Record<string, unknown> | ((s: Scheduler) => unknown) | undefined;
  const setup = (mod['ddSetup'] ?? (typeof def === 'function' ? def : def?.['ddSetup'])) as Setup | undefined;
  const teardown = (mod['ddTeardown'] ?? (typeof def === 'object' && def !== null ? def['ddTeardown'] : undefined)) as Setup | undefined;
  if (typeof setup !== 'function') {
    throw new TypeError(`preload module ${JSON.stringify(specifier)} exports no ddSetup(scheduler) function (nor a default function)`);
  }
  await setup(scheduler);
  if (typeof teardown === 'function') {
    void scheduler.closed.then(() => teardown(scheduler)).catch((err: unknown) => {
      console.error(`preload module ${specifier}: ddTeardown failed`, err);
    });
  }
}

// A real import() even where the compiler or a test transform would turn it into require().
const dynamicImport = new Function('u', 'return import(u)') as (u: string) => Promise<unknown>;
