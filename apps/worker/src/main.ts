// dd-worker: parse the command line, then either run worker processes under a nanny (the
// default: restarts, memory terminate, restart rpc) or run one worker in this process
// (--no-nanny). Shuts down cleanly on SIGINT/SIGTERM.

import { CommanderError } from 'commander';
import { Worker } from '@dd/worker';
import { buildCommand, compileWorkerCli, type WorkerCliArgs } from './options';
import { WorkerSupervisor } from './supervisor';

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
    // during start closes the worker as soon as it exists.
    let worker: Worker | undefined;
    let stopRequested = false;
    onSignals(() => {
      stopRequested = true;
      void worker?.close();
    });
    const started = await Worker.start(options);
    worker = started;
    if (stopRequested) {
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
