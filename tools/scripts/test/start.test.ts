// `npm start`'s script on a free port: a real scheduler, two worker processes and the example.
import { resolve } from 'node:path';
import { killAll, repoRoot, startProcess } from '../../testing/processes';

jest.setTimeout(90_000);

afterEach(() => killAll());

test('npm start runs the example on a local cluster and stops it cleanly', async () => {
  const p = startProcess(resolve(repoRoot, 'tools/scripts/start.js'), ['--exit'], { DD_PORT: '0' });
  const { code } = await p.exited;
  const output = p.lines.join('\n');
  expect(code).toBe(0);
  expect(output).toMatch(/connected to tcp:\/\/127\.0\.0\.1:\d+ with 2 workers/);
  expect(output).toMatch(/chain of 10 incs -> 10 ; sum of squares -> 285/);
  expect(output).toMatch(/a failing task rejects with RemoteError: .*cannot process 42/);
  expect(output).toMatch(/scattered 1 MiB; its length computed on a worker -> 1048576/);
  expect(output).toMatch(/Scheduler closed/);
});
