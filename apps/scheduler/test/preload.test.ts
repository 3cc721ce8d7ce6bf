// dd-scheduler --preload: a module's ddSetup(scheduler) runs at start (here it adds a plugin).

import { join } from 'node:path';
import { Client } from '@dd/client';
import { binaries, killAll, startProcess } from '../../../tools/testing/processes';

jest.setTimeout(30_000);

const fixture = join(__dirname, '..', '..', '..', 'packages', 'scheduler', 'test', 'fixtures', 'preload-plugin.js');

afterEach(async () => {
  await killAll();
});

test('--preload MODULE runs ddSetup; its plugin sees clients; ddTeardown runs on close', async () => {
  const p = startProcess(binaries.scheduler, ['--port', '0', '--no-dashboard', '--preload', fixture]);
  await p.waitForLine(/^preload ran on Scheduler-/);
  const address = (await p.waitForLine(/^Scheduler at: /)).replace('Scheduler at: ', '');
  const client = await Client.connect(address, { heartbeatIntervalMs: 0 });
  try {
    await p.waitForLine(new RegExp(`^plugin saw client ${client.id}$`));
  } finally {
    await client.close();
  }
  p.child.kill('SIGTERM');
  expect(await p.exited).toEqual({ code: 0, signal: null });
  expect(p.lines).toContain('preload teardown');
});

test('a preload module without ddSetup stops the scheduler with an error', async () => {
  const p = startProcess(binaries.scheduler, ['--port', '0', '--no-dashboard', '--preload', join(__dirname, '..', '..', '..', 'packages', 'client', 'test', 'fixtures', 'plugin.js')]);
  const exit = await p.exited;
  expect(exit.code).not.toBe(0);
  expect(p.lines.join('\n')).toMatch(/exports no ddSetup/);
});
