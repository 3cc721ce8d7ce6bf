import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLocalDirectory, LocalDirectoryError, prepareLocalDirectory, purgeStaleLocalDirectories } from '@dd/worker';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-localdir-test-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

test('a new local directory records its owner and removes those of processes that are gone', async () => {
  // A process that has exited: its pid names nobody now.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(gone.stdout);
  const stale = path.join(root, 'dd-worker-stale1');
  fs.mkdirSync(path.join(stale, 'storage'), { recursive: true });
  fs.writeFileSync(path.join(stale, 'owner.pid'), `${deadPid}\n`);
  fs.writeFileSync(path.join(stale, 'storage', '1.dd'), Buffer.alloc(1024));
  const live = path.join(root, 'dd-worker-live01');
  fs.mkdirSync(live);
  fs.writeFileSync(path.join(live, 'owner.pid'), `${process.pid}\n`);
  const unowned = path.join(root, 'dd-worker-noown1'); // being created, or not ours: left alone
  fs.mkdirSync(unowned);
  const other = path.join(root, 'something-else');
  fs.mkdirSync(other);

  const mine = await createLocalDirectory(root);
  expect(path.basename(mine)).toMatch(/^dd-worker-/);
  expect(fs.readFileSync(path.join(mine, 'owner.pid'), 'utf8').trim()).toBe(String(process.pid));
  expect(fs.existsSync(stale)).toBe(false);
  for (const d of [live, unowned, other, mine]) expect(fs.existsSync(d)).toBe(true);
  expect(await purgeStaleLocalDirectories(root)).toBe(0);
});

describe('prepareLocalDirectory', () => {
  /** Settles within `ms`, or fails saying so (Node's own recursive mkdir never settles under /proc). */
  function within<T>(ms: number, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  }

  test('makes missing parents, accepts an existing directory, resolves relative paths', async () => {
    const nested = path.join(root, 'a', 'b', 'c');
    expect(await prepareLocalDirectory(nested)).toBe(nested);
    expect(fs.statSync(nested).isDirectory()).toBe(true);
    expect(await prepareLocalDirectory(nested)).toBe(nested);
    expect(await prepareLocalDirectory(path.relative(process.cwd(), nested))).toBe(nested);
    fs.symlinkSync(nested, path.join(root, 'link'));
    expect(await prepareLocalDirectory(path.join(root, 'link'))).toBe(path.join(root, 'link'));
  });

  test('a directory that cannot be made fails at once, naming it and the cause (also for root)', async () => {
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    const cases: Array<[string, RegExp]> = [
      [path.join(file, 'sub'), /ENOTDIR/],
      [path.join(file, 'sub', 'deeper'), /ENOTDIR/],
      [file, /ENOTDIR/],
      [path.join(root, 'dangling'), /ENOENT/],
      [path.join(root, 'dangling', 'sub'), /ENOENT/],
    ];
    // /proc: mkdir of a missing child is ENOENT although /proc exists, where Node's recursive
    // mkdir loops forever.
    if (fs.existsSync('/proc/self')) cases.push(['/proc/forbidden', /ENOENT/], ['/proc/forbidden/a/b', /ENOENT/]);
    for (const [dir, cause] of cases) {
      const err = await within(2_000, prepareLocalDirectory(dir)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LocalDirectoryError);
      expect((err as LocalDirectoryError).directory).toBe(dir);
      expect((err as Error).message).toContain(`Worker: cannot use local directory ${dir}: `);
      expect((err as Error).message).toMatch(cause);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });
});
