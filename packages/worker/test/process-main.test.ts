import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { FakeScheduler } from './fake-scheduler';

jest.setTimeout(30_000);

// The forked process runs the built JavaScript (npm test builds first).
const ENTRY = path.join(__dirname, '..', 'dist', 'process-main.js');

function start(options: object): { child: ChildProcess; ready: Promise<{ type: string; address: string; name: string }>; exit: Promise<number | null> } {
  const child = fork(ENTRY, [JSON.stringify(options)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const ready = new Promise<{ type: string; address: string; name: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { type: string; address: string; name: string }));
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ready`)));
  });
  ready.catch(() => {});
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exit };
}

let scheduler: FakeScheduler;
const children: ChildProcess[] = [];
beforeEach(async () => {
  scheduler = await FakeScheduler.start();
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await scheduler.close();
});

test('forked worker registers, reports ready, and exits 0 on IPC close', async () => {
  const p = start({ scheduler: scheduler.address, name: 'forked', nthreads: 1 });
  children.push(p.child);
  const ready = await p.ready;
  expect(ready).toMatchObject({ type: 'ready', name: 'forked' });
  expect(scheduler.registrations.map((r) => r.address)).toContain(ready.address);
  p.child.send({ type: 'close' });
  expect(await p.exit).toBe(0);
});

test('SIGTERM closes it cleanly with exit code 0', async () => {
  const p = start({ scheduler: scheduler.address, executor: 'inline' });
  children.push(p.child);
  await p.ready;
  p.child.kill('SIGTERM');
  expect(await p.exit).toBe(0);
});

test('a start failure is reported and exits 1', async () => {
  const p = start({ scheduler: 'tcp://127.0.0.1:1', executor: 'inline', deathTimeoutMs: 200, connectTimeoutMs: 100 });
  children.push(p.child);
  const msg = (await new Promise((resolve) => p.child.once('message', resolve))) as { type: string; message: string };
  expect(msg.type).toBe('error');
  expect(await p.exit).toBe(1);
});
