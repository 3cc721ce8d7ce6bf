// Uploaded files (client.uploadFile): saved in the worker's upload directory
// (<localDirectory>/uploads), where tasks, run() and plugins find them by bare specifier
// (`ref('mymod.js', 'fn')` or `require('mymod')` inside a task: TaskRunner looks there first).
// Saving a file again replaces it; modules loaded from it on the main thread are forgotten so
// the next use loads the new version (executor threads that already loaded it keep theirs).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskRunner } from './task-runner';

/** Checks that `filename` is a plain file name (no directories, not `.`/`..`). */
export function checkUploadName(filename: unknown): string {
  if (typeof filename !== 'string' || filename === '' || filename === '.' || filename === '..' || /[\\/\0]/.test(filename)) {
    throw new TypeError(`upload: ${JSON.stringify(filename)} is not a plain file name`);
  }
  return filename;
}

/**
 * Saves an uploaded file (`data`) or directory (`files`: relative path -> bytes) as `filename`
 * in `dir`, replacing what was there. Returns its path.
 */
export async function saveUpload(dir: string, filename: unknown, data: unknown, runner?: TaskRunner, files?: unknown): Promise<string> {
  const name = checkUploadName(filename);
  // One level: `dir` is inside the local directory checked at start (local-directory.ts explains
  // why not a recursive mkdir there).
  await fs.promises.mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const target = path.join(dir, name);
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  if (files !== undefined && files !== null) {
    if (typeof files !== 'object' || Array.isArray(files)) throw new TypeError('upload: field "files" must map relative paths to bytes');
    for (const [rel, bytes] of Object.entries(files as Record<string, unknown>)) {
      const parts = rel.split(/[\\/]/);
      if (rel === '' || path.isAbsolute(rel) || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) {
        throw new TypeError(`upload: ${JSON.stringify(rel)} is not a relative path inside the directory`);
      }
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`upload: the content of ${rel} must be bytes`);
      const file = path.join(tmp, ...parts);
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      await fs.promises.writeFile(file, bytes);
    }
    await fs.promises.rm(target, { recursive: true, force: true });
  } else {
    if (!(data instanceof Uint8Array)) throw new TypeError('upload: field "data" must be bytes');
    await fs.promises.writeFile(tmp, data);
    const old = await fs.promises.stat(target).catch(() => undefined);
    if (old?.isDirectory() === true) await fs.promises.rm(target, { recursive: true, force: true });
  }
  await fs.promises.rename(tmp, target);
  for (const id of Object.keys(require.cache)) if (id === target || id.startsWith(target + path.sep)) delete require.cache[id];
  runner?.forgetModules();
  return target;
}
