// Entry point of a worker process (dist/process-main.js), forked by LocalCluster and the
// dd-worker binary:
//
//   DD_WORKER_OPTIONS='<WorkerOptions as JSON>' node process-main.js   (or the JSON as argv[2])
//
// LocalCluster and dd-worker's nanny use the environment: options may hold TLS private keys, and
// a command line is readable by every user of the machine (ps, /proc/<pid>/cmdline) while the
// environment is readable only by the process's owner. The variable is removed once read, so
// tasks and the processes they start do not inherit it.
//
// Starts a Worker; with an IPC channel, tells the parent `{type:'ready', address, name}` once
// registered (or `{type:'error', message}` if it could not start). Closes cleanly and exits 0 on
// SIGTERM/SIGINT, on IPC `{type:'close'}`, when the parent goes away (IPC disconnect), or when the
// worker closes by itself (scheduler `close`, death timeout).

import { Worker, type WorkerOptions } from './index';

function readOptions(): WorkerOptions {
  const text = process.env['DD_WORKER_OPTIONS'] ?? process.argv[2];
  delete process.env['DD_WORKER_OPTIONS'];
  if (!text) throw new Error('usage: DD_WORKER_OPTIONS=<options JSON> process-main.js (or the JSON as its argument)');
  const parsed = JSON.parse(text) as WorkerOptions;
  if (typeof parsed !== 'object' || parsed === null) throw new Error('worker options must be a JSON object');
  return parsed;
}

export async function main(): Promise<void> {
  let worker: Worker | undefined;
  let exiting = false;
  // A shutdown while the worker starts aborts the start, which closes what it made (threads,
  // sockets, its own local directory) before it rejects.
  const startAbort = new AbortController();
  let starting: Promise<Worker> | undefined;
  const shutdown = async (code: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    try {
      if (worker !== undefined) {
        await worker.close('process shutdown');
      } else {
        startAbort.abort(new Error('process shutdown while starting'));
        // (A start that completed meanwhile gives a worker, closed like any other.)
        await (await starting?.catch(() => undefined))?.close('process shutdown');
      }
    } finally {
      if (process.connected) process.disconnect();
      process.exit(code);
    }
  };
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  process.on('message', (msg: unknown) => {
    if (typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === 'close') void shutdown(0);
  });
  process.on('disconnect', () => void shutdown(0));

  try {
    starting = Worker.start(readOptions(), { signal: startAbort.signal });
    worker = await starting;
    worker.warnIfLimitLeavesLittleRoom();
  } catch (err) {
    if (startAbort.signal.aborted) return; // shutdown() is exiting
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`dd worker failed to start: ${message}\n`);
    if (process.send) process.send({ type: 'error', message }, () => void shutdown(1));
    else await shutdown(1);
    return;
  }
  void worker.closed.then(() => shutdown(0));
  if (exiting) return;
  if (process.send) process.send({ type: 'ready', address: worker.address, name: worker.name, dashboard: worker.dashboardUrl });
  else process.stdout.write(`Worker at: ${worker.address}\n${worker.dashboardUrl !== undefined ? `Worker dashboard at: ${worker.dashboardUrl}/status\n` : ''}`);
}

if (require.main === module) void main();
