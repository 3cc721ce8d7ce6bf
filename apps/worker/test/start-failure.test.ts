// dd-worker whose worker cannot start (here: an unusable --local-directory) says why and exits 1,
// with and without the nanny, instead of hanging; and SIGINT/SIGTERM stop a worker that is still
// starting (--no-nanny).

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaries, childPids, exitReport, freePort, isAlive, killAll, startProcess, type RunningProcess } from '../../../tools/testing/processes';

jest.setTimeout(60_000);

/** The process's exit, or a failure naming what it printed if it has not exited within `ms`. */
async function exitWithin(p: RunningProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; output?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`dd-worker did not exit within ${ms} ms; output:\n${p.lines.join('\n')}`)), ms);
  });
  try {
    return await Promise.race([exitReport(p), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('dd-worker with a worker that cannot start', () => {
  let dir: string;
  let badDirectories: string[];
  let scheduler: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dd-worker-start-failure-'));
    writeFileSync(join(dir, 'a-file'), 'x');
    // Unusable for root too: a path under a regular file (ENOTDIR), and one under /proc (ENOENT,
    // where Node's recursive mkdir loops forever).
    badDirectories = [join(dir, 'a-file', 'sub')];
    if (existsSync('/proc/self')) badDirectories.push('/proc/forbidden');
    // Nothing listens there: the worker fails before it would connect.
    scheduler = `tcp://127.0.0.1:${await freePort()}`;
  });
  afterEach(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--no-nanny: an unusable --local-directory is a clear error and exit code 1', async () => {
    for (const bad of badDirectories) {
      const w = startProcess(binaries.worker, [scheduler, '--no-nanny', '--no-dashboard', '--local-directory', bad]);
      const report = await exitWithin(w, 15_000);
      expect(report).toMatchObject({ code: 1, signal: null });
      expect(report.output).toContain(`dd-worker: Worker: cannot use local directory ${bad}: `);
      expect(report.output).toMatch(/ENOTDIR|ENOENT/);
      expect(report.output).not.toMatch(/^Worker at: /m);
    }
  });

  test('under the nanny: each worker process reports why, is not restarted, and dd-worker exits 1', async () => {
    for (const bad of badDirectories) {
      const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--no-dashboard', '--local-directory', bad]);
      await w.waitForLine(/^Nanny at: /, 15_000);
      const report = await exitWithin(w, 20_000);
      expect(report).toMatchObject({ code: 1, signal: null });
      for (const index of [0, 1]) {
        expect(report.output).toContain(`Worker process ${index} could not start (Worker: cannot use local directory ${bad}: `);
      }
      expect(report.output).not.toMatch(/restarting in/);
    }
  });

  test('--no-nanny: SIGINT and SIGTERM stop a worker that is still starting (no scheduler yet)', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const w = startProcess(binaries.worker, [scheduler, '--no-nanny', '--nthreads', '2', '--no-dashboard', '--death-timeout', '60s']);
      // Retrying the scheduler: its executor threads run and it listens.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(w.child.exitCode).toBeNull();
      w.child.kill(signal);
      const report = await exitWithin(w, 10_000);
      expect(report).toEqual({ code: 0, signal: null });
      expect(w.lines).toEqual([`Received ${signal}, closing workers`, 'Worker closed']);
    }
  });

  test('under the nanny, SIGINT while its worker is still starting ends both processes', async () => {
    const w = startProcess(binaries.worker, [scheduler, '--nthreads', '1', '--no-dashboard', '--death-timeout', '60s']);
    await w.waitForLine(/^Nanny at: /, 15_000);
    await new Promise((r) => setTimeout(r, 1_500));
    const children = childPids(w.child.pid!);
    expect(children).toHaveLength(1);
    w.child.kill('SIGINT');
    expect(await exitWithin(w, 15_000)).toEqual({ code: 0, signal: null });
    for (const pid of children) expect(isAlive(pid)).toBe(false);
  });
});
