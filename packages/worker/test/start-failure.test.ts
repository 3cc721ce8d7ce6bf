// A worker that cannot start rejects Worker.start with a clear error, promptly, and leaves nothing
// running: no executor threads, no listening sockets, no timers. Likewise a start aborted by its
// signal (dd-worker --no-nanny on SIGINT/SIGTERM while the worker starts).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalDirectoryError, Worker } from '@dd/worker';

jest.setTimeout(20_000);

/** Settles within `ms`, or fails saying so. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Handles that would keep a process alive or show something still running, by kind. */
function running(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (/^(Timeout|Immediate|TCPServerWrap|TCPSocketWrap|TCPWrap|MessagePort|Worker)$/.test(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** Kinds of which more are running than in `baseline`. */
function beyond(baseline: Record<string, number>): Record<string, number> {
  const more: Record<string, number> = {};
  for (const [kind, n] of Object.entries(running())) if (n > (baseline[kind] ?? 0)) more[kind] = n - (baseline[kind] ?? 0);
  return more;
}

/** Nothing more is running than in `baseline` (allowing a moment for handles being closed). */
async function expectBackTo(baseline: Record<string, number>): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (Object.keys(beyond(baseline)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(beyond(baseline)).toEqual({});
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-start-failure-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const quiet = { warn: () => {} };

describe('Worker.start', () => {
  const unusable: Array<[string, () => string, RegExp]> = [
    ['under a regular file (ENOTDIR)', () => {
      fs.writeFileSync(path.join(dir, 'file'), 'x');
      return path.join(dir, 'file', 'sub');
    }, /ENOTDIR/],
  ];
  // Node's fs.mkdir(..., { recursive: true }) never settles here (mkdir /proc/forbidden is
  // ENOENT although /proc exists, and its loop retries forever): what the bug bash found.
  if (fs.existsSync('/proc/self')) unusable.push(['under /proc (ENOENT)', () => '/proc/forbidden', /ENOENT/]);

  test.each(unusable)('with a local directory %s rejects with a clear error and leaves nothing running', async (_what, make, cause) => {
    const localDirectory = make();
    const baseline = running();
    const started = Worker.start({ scheduler: 'tcp://127.0.0.1:1', localDirectory, nthreads: 2, executor: 'threads', dashboardAddress: ':0', logger: quiet });
    const err = await within(5_000, started.then(() => undefined, (e: unknown) => e), 'Worker.start');
    expect(err).toBeInstanceOf(LocalDirectoryError);
    expect((err as Error).message).toContain(`Worker: cannot use local directory ${localDirectory}: `);
    expect((err as Error).message).toMatch(cause);
    await expectBackTo(baseline);
  });

  test('an aborted start (no scheduler yet) rejects with the reason, closes what it made, and cleans its own directory', async () => {
    const baseline = running();
    const before = new Set(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('dd-worker-')));
    const abort = new AbortController();
    const started = Worker.start(
      { scheduler: 'tcp://127.0.0.1:1', nthreads: 2, executor: 'threads', dashboardAddress: ':0', deathTimeoutMs: 60_000, connectTimeoutMs: 100, logger: quiet },
      { signal: abort.signal },
    );
    await new Promise((r) => setTimeout(r, 500)); // threads started, listening, retrying the scheduler
    expect(beyond(baseline)).toMatchObject({ TCPServerWrap: 2 }); // the worker and its HTTP endpoints
    const reason = new Error('stopped by a signal while starting');
    abort.abort(reason);
    await expect(within(5_000, started, 'Worker.start')).rejects.toBe(reason);
    await expectBackTo(baseline);
    const left = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('dd-worker-') && !before.has(n));
    // Other test files may run workers meanwhile: only ours (owned by this pid) must be gone.
    const ours = left.filter((n) => {
      try {
        return fs.readFileSync(path.join(os.tmpdir(), n, 'owner.pid'), 'utf8').trim() === String(process.pid);
      } catch {
        return false;
      }
    });
    expect(ours).toEqual([]);
  });

  test('an already aborted signal starts nothing', async () => {
    const abort = new AbortController();
    abort.abort(new Error('too late'));
    await expect(Worker.start({ scheduler: 'tcp://127.0.0.1:1', executor: 'inline' }, { signal: abort.signal })).rejects.toThrow('too late');
  });
});
