// Throughput of the pure scheduling state machine: tasks per second from submission to
// finished (update-graph -> compute-task -> task-finished -> key-in-memory), no I/O.
// Build first (`npx tsc -b packages/scheduler`), then:
//   node packages/scheduler/bench/state-throughput.js [nTasks=100000] [nWorkers=4] [batch=1000]
'use strict';
const { SchedulerState } = require('../dist');

const nTasks = Number(process.argv[2] ?? 100_000);
const nWorkers = Number(process.argv[3] ?? 4);
const batch = Number(process.argv[4] ?? 1000);
const spec = { language: 'js', data: new Uint8Array(16) };

function run(label, makeBatch, total = nTasks, quiet = false) {
  const s = new SchedulerState({ validate: false });
  for (let w = 0; w < nWorkers; w++) {
    s.handleStimulus({ kind: 'add-worker', address: `tcp://127.0.0.1:${9000 + w}`, name: `w${w}`, host: '127.0.0.1', nthreads: 2, memoryLimit: 1e9, resources: {}, stimulusId: 'add' });
  }
  s.handleStimulus({ kind: 'add-client', client: 'c', stimulusId: 'c' });
  let sid = 0;
  let finished = 0;
  let clientMsgs = 0;
  const t0 = process.hrtime.bigint();
  for (let start = 0; start < total; start += batch) {
    const { tasks, keys } = makeBatch(start, Math.min(batch, total - start));
    let pending = s.handleStimulus({ kind: 'update-graph', client: 'c', tasks, keys, stimulusId: `ug-${sid++}` });
    // Play the workers: finish every compute-task as it is sent, until the batch settles.
    while (pending.length > 0) {
      const events = [];
      for (const ins of pending) {
        if (ins.type === 'send-client') { clientMsgs += ins.msgs.length; continue; }
        for (const m of ins.msgs) {
          if (m.op === 'compute-task') {
            events.push({ kind: 'task-finished', worker: ins.worker, key: m.key, nbytes: 8, startstops: [{ action: 'compute', start: 0, stop: 0.01 }], stimulusId: `tf-${sid++}` });
          }
        }
      }
      finished += events.length;
      pending = events.length > 0 ? s.handleStimulus(...events) : [];
    }
    // The client drops its futures.
    s.handleStimulus({ kind: 'client-releases-keys', client: 'c', keys, stimulusId: `rel-${sid++}` });
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (quiet) return;
  console.log(`${label.padEnd(44)} ${finished} tasks in ${secs.toFixed(3)} s = ${Math.round(finished / secs).toLocaleString('en-US')} tasks/s  (${s.transitionCounter} transitions = ${Math.round(s.transitionCounter / secs).toLocaleString('en-US')}/s, ${clientMsgs} client msgs, tasks left ${s.tasks.size})`);
}

const mapBatch = (start, n) => {
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push({ key: `inc-${start + i}`, spec, dependencies: [], order: i });
  return { tasks, keys: tasks.map((t) => t.key) };
};
run('warm-up', mapBatch, 20_000, true);
run('independent tasks (map)', mapBatch);

run('chains of 10 (only tails wanted)', (start, n) => {
  const tasks = [];
  const keys = [];
  for (let i = 0; i < n; i++) {
    const chain = Math.floor(i / 10);
    const key = `step-${start + i}`;
    const deps = i % 10 === 0 ? [] : [`step-${start + i - 1}`];
    tasks.push({ key, spec, dependencies: deps, order: i });
    if (i % 10 === 9 || i === n - 1) keys.push(key);
    void chain;
  }
  return { tasks, keys };
});

run('tree reduction (fan-in 8)', (start, n) => {
  const leaves = Math.max(1, Math.floor(n / 1.15));
  const tasks = [];
  let level = [];
  for (let i = 0; i < leaves; i++) { const k = `leaf-${start}-${i}`; tasks.push({ key: k, spec, dependencies: [], order: tasks.length }); level.push(k); }
  let depth = 0;
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i < level.length; i += 8) {
      const k = `sum-${start}-${depth}-${i}`;
      tasks.push({ key: k, spec, dependencies: level.slice(i, i + 8), order: tasks.length });
      next.push(k);
    }
    level = next;
    depth++;
  }
  return { tasks, keys: level };
});
