#!/usr/bin/env node
// Map throughput: N tiny tasks through a LocalCluster (worker processes), end to end
// (submit -> scheduler -> workers -> results gathered). Uses the built packages (dist/).
//   node packages/client/scripts/bench-map.js [--tasks 10000] [--workers 2] [--threads 1] [--rounds 3] [--inproc-workers]
'use strict';
const { Client, LocalCluster } = require('../dist/index.js');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function main() {
  const n = arg('tasks', 10000);
  const nWorkers = arg('workers', 2);
  const threads = arg('threads', 1);
  const rounds = arg('rounds', 3);
  const processes = !process.argv.includes('--inproc-workers');
  const t0 = performance.now();
  const cluster = await LocalCluster.start({ nWorkers, threadsPerWorker: threads, processes });
  const client = await Client.connect(cluster);
  console.log(`cluster up in ${(performance.now() - t0).toFixed(0)} ms: ${nWorkers} worker ${processes ? 'processes' : 'in-process workers'} x ${threads} thread(s)`);
  try {
    const inc = (x) => x + 1;
    for (let r = 0; r < rounds; r++) {
      const base = r * n * 10;
      const items = Array.from({ length: n }, (_, i) => base + i);
      const start = performance.now();
      const fs = client.map(inc, items);
      const submitted = performance.now();
      const results = await client.gather(fs);
      const end = performance.now();
      if (results.length !== n || results[n - 1] !== base + n) throw new Error('wrong results');
      console.log(
        `round ${r + 1}: ${n} tasks in ${(end - start).toFixed(0)} ms = ${Math.round(n / ((end - start) / 1000))} tasks/s ` +
          `(client-side submit ${(submitted - start).toFixed(0)} ms)`,
      );
      for (const f of fs) f.release();
    }
  } finally {
    await client.close();
    await cluster.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
