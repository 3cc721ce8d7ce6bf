// Runs the reference system's benchmark (../shared/peer/dask_bench.py) when Debian's
// python3-distributed is installed, and returns its JSON line.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Figures } from './cluster-workloads';

export function daskBenchScript(): string | undefined {
  const candidates = [
    process.env.DD_PEER_DIR && resolve(process.env.DD_PEER_DIR, 'dask_bench.py'),
    resolve(__dirname, '..', '..', '..', '..', 'shared', 'peer', 'dask_bench.py'),
  ].filter((p): p is string => typeof p === 'string');
  return candidates.find((p) => existsSync(p));
}

export function runDaskBench(nWorkers: number, timeoutMs = 15 * 60_000): Promise<Figures> {
  const script = daskBenchScript();
  if (!script) return Promise.reject(new Error('dask_bench.py not found (set DD_PEER_DIR to ../shared/peer)'));
  return new Promise((resolveFigures, reject) => {
    execFile('/usr/bin/python3', [script, String(nWorkers)], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const hint = /No module named/.test(stderr) ? ' (install it: apt-get install -y python3-distributed python3-lz4)' : '';
        return reject(new Error(`dask benchmark failed${hint}: ${err.message}\n${stderr.slice(-2000)}`));
      }
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (!line) return reject(new Error(`dask benchmark printed no JSON line:\n${stdout.slice(-2000)}`));
      resolveFigures(JSON.parse(line) as Figures);
    });
  });
}
