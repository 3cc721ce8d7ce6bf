import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rpc } from '@dd/comm';
import { binaries, killAll, startProcess, exitReport } from '../../../tools/testing/processes';
import { buildCommand } from '../src/main';

jest.setTimeout(30_000);

describe('dd-scheduler options', () => {
  test('work stealing is on unless --no-work-stealing', () => {
    expect(buildCommand().parse([], { from: 'user' }).opts()).toMatchObject({ workStealing: true });
    expect(buildCommand().parse(['--no-work-stealing'], { from: 'user' }).opts()).toMatchObject({ workStealing: false });
  });
});

describe('dd-scheduler', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await killAll();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  test('prints its address, serves rpc, and closes cleanly on SIGTERM', async () => {
    const p = startProcess(binaries.scheduler, ['--port', '0', '--dashboard-address', ':0']);
    const line = await p.waitForLine(/^Scheduler at: /);
    const address = line.replace('Scheduler at: ', '');
    expect(address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(p.lines.join('\n')).toMatch(/Listening on 127\.0\.0\.1 only/);

    const r = rpc(address);
    try {
      const identity = await r.call<{ type: string; address: string; workers: object }>('identity');
      expect(identity).toMatchObject({ type: 'Scheduler', address, workers: {} });
    } finally {
      await r.close();
    }

    const dashboard = (await p.waitForLine(/^Dashboard at: /)).replace('Dashboard at: ', '');
    expect(dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/status$/);
    const health = await fetch(dashboard.replace('/status', '/health'), { signal: AbortSignal.timeout(5000) });
    expect(await health.text()).toBe('ok');
    const status = await fetch(dashboard, { signal: AbortSignal.timeout(5000) });
    expect(status.status).toBe(200);
    expect(await status.text()).toContain('/statics/dashboard.js');

    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.lines).toContain('Scheduler closed');
  });

  test('--no-dashboard serves no dashboard; a bad --dashboard-address is refused', async () => {
    const p = startProcess(binaries.scheduler, ['--port', '0', '--no-dashboard']);
    await p.waitForLine(/^Scheduler at: /);
    p.child.kill('SIGTERM');
    expect(await exitReport(p)).toEqual({ code: 0, signal: null });
    expect(p.lines.join('\n')).not.toMatch(/Dashboard at:/);

    const bad = startProcess(binaries.scheduler, ['--port', '0', '--dashboard-address', 'nowhere']);
    expect((await bad.exited).code).not.toBe(0);
    expect(bad.lines.join('\n')).toMatch(/--dashboard-address: invalid listen address "nowhere"/);
  });

  test('--scheduler-file writes the address and removes the file on shutdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dd-sched-'));
    dirs.push(dir);
    const file = join(dir, 'scheduler.json');
    const p = startProcess(binaries.scheduler, ['--port', '0', '--no-dashboard', '--scheduler-file', file]);
    const address = (await p.waitForLine(/^Scheduler at: /)).replace('Scheduler at: ', '');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ type: 'Scheduler', address });
    p.child.kill('SIGINT');
    expect(await exitReport(p)).toEqual({ code: 0, signal: null });
    expect(existsSync(file)).toBe(false);
  });

  test('--protocol ws listens on a WebSocket address that answers rpc', async () => {
    const p = startProcess(binaries.scheduler, ['--protocol', 'ws', '--port', '0', '--no-dashboard']);
    const address = (await p.waitForLine(/^Scheduler at: /)).replace('Scheduler at: ', '');
    expect(address).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const r = rpc(address);
    try {
      expect(await r.call<{ type: string; address: string }>('identity')).toMatchObject({ type: 'Scheduler', address });
    } finally {
      await r.close();
    }
    p.child.kill('SIGTERM');
    expect(await exitReport(p)).toEqual({ code: 0, signal: null });
  });

  test('--idle-timeout: with no clients and no tasks for that long, the scheduler closes itself', async () => {
    const p = startProcess(binaries.scheduler, ['--port', '0', '--no-dashboard', '--idle-timeout', '1s']);
    await p.waitForLine(/^Scheduler at: /);
    expect(await exitReport(p)).toEqual({ code: 0, signal: null });
    expect(p.lines.join('\n')).toMatch(/scheduler idle for \d+ ms \(no clients, no tasks; idle timeout 1000 ms\); closing/);
  });

  test('bad options fail with a clear message and a non-zero exit', async () => {
    const badPort = startProcess(binaries.scheduler, ['--port', 'eighty']);
    expect((await badPort.exited).code).not.toBe(0);
    expect(badPort.lines.join('\n')).toMatch(/invalid port "eighty"/);

    const tlsWithoutCerts = startProcess(binaries.scheduler, ['--port', '0', '--protocol', 'tls']);
    expect((await tlsWithoutCerts.exited).code).not.toBe(0);
    expect(tlsWithoutCerts.lines.join('\n')).toMatch(/--protocol tls needs --tls-ca-file/);
  });
});
