#!/usr/bin/env node
// npm start: a local cluster (dd-scheduler and dd-worker with two worker processes) and the
// example client program. The cluster keeps running until Ctrl-C; `--exit` stops it after the
// example (used by tests and CI).
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

const root = path.resolve(__dirname, '..', '..');
const exitAfterExample = process.argv.includes('--exit');
const port = process.env.DD_PORT ?? '8786';
const children = [];

function launch(name, script, args) {
  const child = spawn(process.execPath, [path.join(root, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines = readline.createInterface({ input: child.stdout });
  const errors = readline.createInterface({ input: child.stderr });
  errors.on('line', (line) => console.error(`[${name}] ${line}`));
  lines.on('line', (line) => console.log(`[${name}] ${line}`));
  // Resolves with what follows `prefix` on the count-th line that starts with it.
  const seen = (prefix, count = 1) => new Promise((resolve, reject) => {
    let matches = 0;
    lines.on('line', (line) => {
      if (line.startsWith(prefix) && ++matches === count) resolve(line.slice(prefix.length).trim());
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before printing "${prefix}"`)));
  });
  return { child, seen };
}

async function stopAll() {
  await Promise.all(children.map((child) => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  })));
}

async function main() {
  const scheduler = launch('scheduler', 'apps/scheduler/bin/dd-scheduler.js', ['--port', port]);
  const address = await scheduler.seen('Scheduler at:');
  const workers = launch('workers', 'apps/worker/bin/dd-worker.js', [address, '--nworkers', '2', '--nthreads', '1']);
  await workers.seen('Worker at:', 2);
  console.log('\n--- example: examples/quickstart.js ---');
  await require(path.join(root, 'examples', 'quickstart.js')).run(address);
  console.log('--- example done ---\n');
  if (exitAfterExample) return;
  console.log(`Cluster running: scheduler at ${address} with 2 workers. Connect with Client.connect('${address}'). Ctrl-C stops it.`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

main()
  .catch((err) => {
    console.error(`npm start failed: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(stopAll);
