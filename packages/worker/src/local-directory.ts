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

const PREFIX = 'dd-worker-';
const OWNER_FILE = 'owner.pid';

/** Creates a fresh owned directory; also purges stale ones (best effort, errors ignored). */
export async function createLocalDirectory(root = os.tmpdir()): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(root, PREFIX));
  await fs.promises.writeFile(path.join(dir, OWNER_FILE), `${process.pid}\n`);
  await purgeStaleLocalDirectories(root).catch(() => 0);
  return dir;
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
