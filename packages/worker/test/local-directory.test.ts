import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLocalDirectory, purgeStaleLocalDirectories } from '@dd/worker';

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
