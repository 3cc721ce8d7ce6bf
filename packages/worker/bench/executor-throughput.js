// Tiny tasks per second through the executors (build first: npx turbo run build --filter=@dd/worker...).
//   node packages/worker/bench/executor-throughput.js [nthreads=4] [tasks=20000]
// Keeps nthreads tasks in flight (as WorkerState does) and reports tasks/s and µs per task.
const { ThreadPoolExecutor, InlineExecutor } = require('../dist/index.js');
const { encodeTaskSpec, keyRef } = require('@dd/protocol');

async function bench(executor, n) {
  const spec = encodeTaskSpec({
    fn: { kind: 'source', name: 'inc', source: 'function inc(x) { return x + 1; }', hash: 'h-inc' },
    args: [keyRef('x')],
  });
  const deps = new Map([['x', 1]]);
  let started = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: executor.nthreads }, async () => {
      while (started < n) {
        started++;
        const o = await executor.run({ key: `inc-${started}`, spec, deps });
        if (!o.ok) throw new Error(o.error.message);
      }
    }),
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { tasksPerSecond: Math.round(n / s), microsPerTask: +((s / n) * 1e6).toFixed(1) };
}

(async () => {
  const nthreads = Number(process.argv[2] ?? 4);
  const n = Number(process.argv[3] ?? 20000);
  const pool = await ThreadPoolExecutor.create({ nthreads, cwd: process.cwd() });
  await bench(pool, 2000); // warm up
  console.log(`threads (${nthreads}):`, await bench(pool, n));
  await pool.close();
  const one = await ThreadPoolExecutor.create({ nthreads: 1, cwd: process.cwd() });
  await bench(one, 2000);
  console.log('threads (1):', await bench(one, n));
  await one.close();
  const inline = new InlineExecutor({ nthreads, cwd: process.cwd() });
  await bench(inline, 2000);
  console.log('inline:', await bench(inline, n));
})();
