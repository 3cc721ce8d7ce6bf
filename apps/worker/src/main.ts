// dd-worker: parse the command line, then either run worker processes under a nanny (the
// default: restarts, memory terminate, restart rpc) or run one worker in this process
// (--no-nanny). Shuts down cleanly on SIGINT/SIGTERM.

import { CommanderError } from 'commander';
import { Worker } from '@dd/worker';
import { buildCommand, compileWorkerCli, type WorkerCliArgs } from './options';
import { WorkerSupervisor } from './supervisor';

/** How long after SIGINT/SIGTERM a --no-nanny worker may take to close (the nanny's closeTimeoutMs). */
const STOP_TIMEOUT_MS = 10_000;

function onSignals(stop: (signal: NodeJS.Signals) => void): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`Received ${signal}, closing workers`);
    stop(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export async function main(argv: string[]): Promise<number> {
  const command = buildCommand();
  try {
    command.parse(argv);
  } catch (err) {
    // commander has printed the usage error or the help text already.
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
  const cli = compileWorkerCli(command.args[0], command.opts<WorkerCliArgs>());

  if (!cli.nanny) {
    const options = cli.workers[0]!;
    // Signals first: whoever sees the address printed may stop us at once, and without a
    // handler the default action would kill the process without closing the worker. A signal
    // during start aborts it (Worker.start closes what it made and rejects); a worker that
    // does not close within STOP_TIMEOUT_MS of the signal (stuck in a preload's ddSetup, say)
    // does not keep the process alive: the signal always ends it, as the nanny's SIGKILL does.
    let worker: Worker | undefined;
    const startAbort = new AbortController();
    onSignals(() => {
      setTimeout(() => {
        console.error(`dd-worker: the worker did not close within ${STOP_TIMEOUT_MS / 1000} s; exiting`);
        process.exit(1);
      }, STOP_TIMEOUT_MS).unref();
      if (worker === undefined) startAbort.abort(new Error('stopped by a signal while starting'));
      else void worker.close();
    });
    let started: Worker;
    try {
      started = await Worker.start(options, { signal: startAbort.signal });
    } catch (err) {
      if (startAbort.signal.aborted) {
        console.log('Worker closed');
        return 0;
      }
      // It could not start (an unusable --local-directory, a failing --preload, no scheduler
      // within --death-timeout): Worker.start closed everything it had made; the binary prints
      // `dd-worker: <message>` and exits 1.
      throw err;
    }
    worker = started;
    if (startAbort.signal.aborted) {
      // The signal came as the start completed, too late to abort it.
      void started.close();
    } else {
      console.log(`Worker at: ${started.address}`);
      started.warnIfLimitLeavesLittleRoom();
      if (started.dashboardUrl !== undefined) console.log(`Worker dashboard at: ${started.dashboardUrl}/status`);
      if (cli.lifetimeMs !== undefined) setTimeout(() => void started.close(), cli.lifetimeMs).unref();
    }
    await started.closed;
    console.log('Worker closed');
    return 0;
  }

  const supervisor = new WorkerSupervisor(cli.workers, cli.lifetimeMs !== undefined ? { lifetimeMs: cli.lifetimeMs } : {});
  // Signals go on to the workers as a clean close (IPC), then the signal, then SIGKILL.
  onSignals((signal) => void supervisor.close(signal));
  // Serve first: each worker process is told the nanny's address and gives it to the scheduler.
  if (cli.nannyAddress !== undefined) console.log(`Nanny at: ${await supervisor.serve(cli.nannyAddress, cli.comm)}`);
  supervisor.start();
  await supervisor.done;
  // Every worker process ended (closed by the scheduler, or --lifetime): the nanny's rpc server
  // must not keep this process alive.
  await supervisor.close();
  return supervisor.failedToStart > 0 ? 1 : 0;
}
