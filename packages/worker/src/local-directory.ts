// A worker's own scratch directory (spilled data, uploaded files) when none is given: a fresh
// `dd-worker-XXXXXX` under the system's temporary directory, removed when the worker closes.
//
// A worker that is killed (kill -9, the nanny's memory terminate, a crash) cannot remove its
// directory, and spilled data can be large. As the reference's WorkSpace does with its lock
// files, each directory records the process that owns it (`owner.pid`), and a worker creating
// its directory removes those whose owner is no longer running.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalDirectoryError } from './errors';

const PREFIX = 'dd-worker-';
const OWNER_FILE = 'owner.pid';

/**
 * Creates a fresh owned directory; also purges stale ones (best effort, errors ignored). Throws
 * LocalDirectoryError (naming `root`) if it cannot be made.
 */
export async function createLocalDirectory(root = os.tmpdir()): Promise<string> {
  let dir: string;
  try {
    dir = await fs.promises.mkdtemp(path.join(root, PREFIX));
    await fs.promises.writeFile(path.join(dir, OWNER_FILE), `${process.pid}\n`);
  } catch (err) {
    throw new LocalDirectoryError(root, err);
  }
  await purgeStaleLocalDirectories(root).catch(() => 0);
  return dir;
}

/**
 * Makes sure `dir` (a given local directory) exists, with its missing parents, and that this
 * process can write to it; throws LocalDirectoryError naming the directory and the cause.
 *
 * Not `fs.mkdir(dir, { recursive: true })`: Node's recursive mkdir never returns when mkdir of a
 * path fails with ENOENT although its parent exists, as under /proc or /sys (mkdir
 * `/proc/forbidden` is ENOENT, mkdir `/proc` EEXIST, and its C++ loop retries the pair forever,
 * spinning a libuv thread: the promise never settles, and the synchronous form freezes the
 * thread). Here a missing path is retried once after its parent was made: a second ENOENT is final.
 */
export async function prepareLocalDirectory(dir: string): Promise<string> {
  const resolved = path.resolve(dir);
  try {
    await makeDirectory(resolved);
    await fs.promises.access(resolved, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new LocalDirectoryError(resolved, err);
  }
  return resolved;
}

async function makeDirectory(dir: string): Promise<void> {
  try {
    await fs.promises.mkdir(dir);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return checkIsDirectory(dir);
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    await makeDirectory(parent);
  }
  // The parent exists now: one more attempt, whose failure is final.
  try {
    await fs.promises.mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return checkIsDirectory(dir);
    throw err;
  }
}

/** After EEXIST: fine if `dir` is a directory (or a link to one), else ENOTDIR. */
async function checkIsDirectory(dir: string): Promise<void> {
  const stat = await fs.promises.stat(dir); // a dangling link: ENOENT, stat
  if (stat.isDirectory()) return;
  throw notADirectoryError(dir);
}

/** The error mkdir would give for `dir` if it knew that `dir` exists but is not a directory. */
export function notADirectoryError(dir: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', errno: -os.constants.errno.ENOTDIR, syscall: 'mkdir', path: dir });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the `dd-worker-*` directories under `root` whose owner process is gone. Directories
 * without an owner file (being created, or made by another program) are left alone. Returns how
 * many were removed.
 */
export async function purgeStaleLocalDirectories(root = os.tmpdir()): Promise<number> {
  let removed = 0;
  for (const name of await fs.promises.readdir(root)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(root, name);
    let pid: number;
    try {
      pid = Number.parseInt(await fs.promises.readFile(path.join(dir, OWNER_FILE), 'utf8'), 10);
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0 || isRunning(pid)) continue;
    try {
      await fs.promises.rm(dir, { recursive: true, force: true });
      removed++;
    } catch {
      // Another worker removed it first, or it is not ours to remove.
    }
  }
  return removed;
}
