import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaries, childPids, freePort, isAlive, killAll, startProcess, waitUntil, schedulerIdentity, startScheduler, exitReport } from '../../../tools/testing/processes';

jest.setTimeout(60_000);

describe('dd-worker', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await killAll();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  test('--nworkers runs supervised worker processes that register with their options', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1', '--name', 'alpha',
      '--memory-limit', '2GB', '--resources', 'GPU=2']);
    const lines = await w.waitForLines(/^Worker at: /, 2);
    const addresses = lines.map((l) => l.replace('Worker at: ', ''));
    await waitUntil(async () => Object.keys((await schedulerIdentity(scheduler)).workers).length === 2, 10_000, 'two workers');
    const workers = Object.values((await schedulerIdentity(scheduler)).workers);
    expect(workers.map((x) => x.address).sort()).toEqual([...addresses].sort());
    expect(workers.map((x) => x.name).sort()).toEqual(['alpha-0', 'alpha-1']);
    for (const x of workers) {
      expect(x).toMatchObject({ nthreads: 1, memoryLimit: 2e9, resources: { GPU: 2 } });
    }

    // The worker processes are children of the supervisor; SIGTERM ends them all.
    const children = childPids(w.child.pid!);
    expect(children).toHaveLength(2);
    w.child.kill('SIGTERM');
    expect(await exitReport(w)).toEqual({ code: 0, signal: null });
    for (const pid of children) expect(isAlive(pid)).toBe(false);
    await waitUntil(async () => Object.keys((await schedulerIdentity(scheduler)).workers).length === 0, 10_000, 'workers removed');
  });

  test('a worker process that dies is restarted by the supervisor', async () => {
    const scheduler = await startScheduler();
    const w = startProcess(binaries.worker, [scheduler, '--nworkers', '2', '--nthreads', '1']);
    await w.waitForLines(/^Worker at: /, 2);
    const [victim] = childPids(w.child.pid!);
    process.kill(victim!, 'SIGKILL');
    await w.waitForLine(/died with signal SIGKILL; restarting/);
    await w.waitForLines(/^Worker at: /, 3);
    await waitUntil(async () => {
      const ws = Object.keys((await schedulerIdentity(scheduler)).workers);
      return ws.length === 2;
    }, 20_000, 'two live workers again');
    expect(childPids(w.child.pid!)).toHaveLength(2);
  });

  test('--scheduler-file and --no-nanny run one worker in this process', async () => {
    const scheduler = await startScheduler();
    const dir = mkdtempSync(join(tmpdir(), 'dd-worker-'));
    dirs.push(dir);
    const file = join(dir, 'scheduler.json');
    writeFileSync(file, JSON.stringify({ address: scheduler }));
    const w = startProcess(binaries.worker, ['--scheduler-file', file, '--no-nanny', '--nthreads', '2']);
    await w.waitForLine(/^Worker at: /);
    expect(childPids(w.child.pid!)).toHaveLength(0);
    await waitUntil(async () => Object.values((await schedulerIdentity(scheduler)).workers).some((x) => x.nthreads === 2), 10_000, 'worker registered');
    w.child.kill('SIGINT');
    expect(await exitReport(w)).toEqual({ code: 0, signal: null });
  });

  test('--host, --worker-port and --local-directory place the worker; --lifetime closes it', async () => {
    const scheduler = await startScheduler();
    const dir = mkdtempSync(join(tmpdir(), 'dd-worker-dir-'));
    dirs.push(dir);
    const port = await freePort();
    const w = startProcess(binaries.worker, [scheduler, '--no-nanny', '--host', '127.0.0.1', '--worker-port', String(port),
      '--local-directory', dir, '--lifetime', '3s']);
    const address = (await w.waitForLine(/^Worker at: /)).replace('Worker at: ', '');
    expect(address).toBe(`tcp://127.0.0.1:${port}`);
    await waitUntil(async () => address in (await schedulerIdentity(scheduler)).workers, 10_000, 'the worker registered at its port');
    const registered = (await schedulerIdentity(scheduler)).workers[address] as { localDirectory?: string };
    expect(registered.localDirectory).toBe(dir); // spilled data and uploaded files go there
    // --lifetime: the worker closes itself, the process ends cleanly and the scheduler forgets it.
    expect(await exitReport(w)).toEqual({ code: 0, signal: null });
    await waitUntil(async () => Object.keys((await schedulerIdentity(scheduler)).workers).length === 0, 10_000, 'the worker removed');
  });

  test('usage errors are clear', async () => {
    const noAddress = startProcess(binaries.worker, []);
    expect((await noAddress.exited).code).not.toBe(0);
    expect(noAddress.lines.join('\n')).toMatch(/a scheduler address is required/);

    const badMemory = startProcess(binaries.worker, ['tcp://127.0.0.1:1', '--memory-limit', 'plenty']);
    expect((await badMemory.exited).code).not.toBe(0);
    expect(badMemory.lines.join('\n')).toMatch(/cannot read "plenty" as a byte size/);

    const noNannyMany = startProcess(binaries.worker, ['tcp://127.0.0.1:1', '--no-nanny', '--nworkers', '2']);
    expect((await noNannyMany.exited).code).not.toBe(0);
    expect(noNannyMany.lines.join('\n')).toMatch(/cannot be combined with --nworkers/);
  });
});
