// dd-worker --preload: a module's ddSetup(worker) runs in each worker process before it
// registers, ddTeardown(worker) when it closes; a module that cannot set up stops the worker
// with a clear error, and the nanny does not restart it in a loop.

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@dd/client';
import { binaries, killAll, startProcess, startScheduler, waitUntil, exitReport } from '../../../tools/testing/processes';

jest.setTimeout(60_000);

describe('dd-worker --preload', () => {
  let dir: string;
  let client: Client | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dd-preload-'));
  });
  afterEach(async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('ddSetup runs in every worker before it registers; ddTeardown when it closes', async () => {
    const setup = join(dir, 'setup.js');
    writeFileSync(setup, `
      const fs = require('fs'), path = require('path');
      exports.ddSetup = async (worker) => {
        await new Promise((r) => setTimeout(r, 20));
        worker.greeting = 'set up before registering: ' + (worker.status !== 'running');
      };
      exports.ddTeardown = () => fs.writeFileSync(path.join(__dirname, 'teardown-' + process.pid), 'done');
    `);
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--no-dashboard', '--preload', setup]);
    await w.waitForLines(/^Worker at: /, 2, 30_000);
    client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
    await client.waitForWorkers(2, { timeout: 20_000 });
    const greetings = await client.run(function (this: { greeting?: string }) {
      return this.greeting;
    });
    expect(Object.values(greetings)).toEqual(['set up before registering: true', 'set up before registering: true']);

    w.child.kill('SIGTERM');
    expect(await exitReport(w)).toEqual({ code: 0, signal: null });
    await waitUntil(() => readdirSync(dir).filter((f) => f.startsWith('teardown-')).length === 2, 10_000, 'two teardowns');
  });

  test('a module without ddSetup, or whose ddSetup throws, stops the worker with a clear error; the nanny does not restart it', async () => {
    const none = join(dir, 'none.js');
    writeFileSync(none, 'exports.other = 1;');
    const throws = join(dir, 'throws.js');
    writeFileSync(throws, "exports.ddSetup = () => { throw new Error('no database here'); };");
    const scheduler = await startScheduler();

    const a = startProcess(binaries.worker, [scheduler, '--no-nanny', '--no-dashboard', '--preload', none]);
    expect((await a.exited).code).not.toBe(0);
    expect(a.lines.join('\n')).toMatch(/preload module ".*none\.js" exports no ddSetup\(worker\) function/);

    const b = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--no-dashboard', '--preload', throws]);
    expect((await b.exited).code).toBe(1);
    const out = b.lines.join('\n');
    expect(out).toMatch(/ddSetup failed: no database here/);
    expect(out).toMatch(/could not start .*not restarting it/);
    expect(out).not.toMatch(/restarting in/);
  });
});
