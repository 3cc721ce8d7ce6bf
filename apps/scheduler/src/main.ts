// dd-scheduler: parse the command line, start a Scheduler, print where it serves, and shut down
// cleanly on SIGINT/SIGTERM.

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { writeFileSync, rmSync } from 'node:fs';
import { parseListenAddress, readTlsFiles } from '@dd/comm';
import { parseTimedelta } from '@dd/protocol';
import { DashboardServer } from '@dd/dashboard';
import { Scheduler, preload } from '@dd/scheduler';

export interface SchedulerCliOptions {
  host: string;
  port: number;
  protocol: 'tcp' | 'tls' | 'ws' | 'wss';
  schedulerFile?: string;
  idleTimeout?: string;
  workerTtl?: string;
  allowedFailures?: string;
  dashboardAddress: string;
  dashboard: boolean;
  workStealing: boolean;
  tlsCaFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  preload: string[];
}

export function buildCommand(): Command {
  return new Command('dd-scheduler')
    .description('Run the dd scheduler: it coordinates workers and clients.')
    .option('--host <host>', 'interface to listen on (use 0.0.0.0 to accept remote workers)', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free port)', (v) => parsePort(v), 8786)
    .addOption(new Option('--protocol <protocol>', 'transport for workers and clients').choices(['tcp', 'tls', 'ws', 'wss']).default('tcp'))
    .option('--scheduler-file <file>', 'write the scheduler address to this JSON file (workers and clients can read it)')
    .option('--dashboard-address <address>', 'where the dashboard listens: ":PORT" (on --host) or "HOST:PORT"; port 0 picks a free one', ':8787')
    .option('--no-dashboard', 'do not serve the dashboard')
    .option('--idle-timeout <duration>', 'shut down after this long with no clients and no tasks, e.g. "1h"')
    .option('--worker-ttl <duration>', 'remove a worker that sent no heartbeat for this long, e.g. "30s" (the default)')
    .option('--allowed-failures <n>', 'deaths of workers running a task before it errs with KilledWorker (default 3)')
    .option('--no-work-stealing', 'do not move queued tasks from busy workers to idle ones')
    .option('--tls-ca-file <file>', 'CA certificate (PEM) that peers must be signed by (tls/wss)')
    .option('--tls-cert <file>', 'this scheduler\'s certificate (PEM)')
    .option('--tls-key <file>', 'this scheduler\'s private key (PEM)')
    .option('--preload <module>', 'a module whose ddSetup(scheduler) runs at start, e.g. to add plugins (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .showHelpAfterError()
    .exitOverride();
}

function nonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`invalid port ${JSON.stringify(value)}`);
  return port;
}

export function listenAddress(options: SchedulerCliOptions): string {
  const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  return `${options.protocol}://${host}:${options.port}`;
}

function dashboardListenAddress(options: SchedulerCliOptions): { host: string; port: number } {
  try {
    return parseListenAddress(options.dashboardAddress, options.host);
  } catch (err) {
    throw new Error(`--dashboard-address: ${(err as Error).message}`);
  }
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
  const options = command.opts<SchedulerCliOptions>();
  const tls = readTlsFiles({ caFile: options.tlsCaFile, certFile: options.tlsCert, keyFile: options.tlsKey });
  if ((options.protocol === 'tls' || options.protocol === 'wss') && !tls) {
    throw new Error(`--protocol ${options.protocol} needs --tls-ca-file, --tls-cert and --tls-key`);
  }
  const dashboardAt = options.dashboard ? dashboardListenAddress(options) : undefined;
  const scheduler = await Scheduler.create({
    address: listenAddress(options),
    ...(tls ? { comm: tls } : {}),
    ...(options.idleTimeout ? { idleTimeoutMs: parseTimedelta(options.idleTimeout) } : {}),
    ...(options.workerTtl ? { workerTtlMs: parseTimedelta(options.workerTtl) } : {}),
    ...(options.allowedFailures !== undefined ? { allowedFailures: nonNegativeInt(options.allowedFailures, '--allowed-failures') } : {}),
    workStealing: options.workStealing,
  });
  try {
    for (const module of options.preload) await preload(scheduler, module);
  } catch (err) {
    await scheduler.close();
    throw err;
  }
  // Signals first: whoever sees the address printed may stop us at once.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`Received ${signal}, closing the scheduler`);
    void scheduler.close();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // The file first: whoever sees the address printed may read the file at once.
  if (options.schedulerFile) {
    writeFileSync(options.schedulerFile, JSON.stringify({ type: 'Scheduler', id: scheduler.id, address: scheduler.address }, null, 2));
  }
  if (options.host === '127.0.0.1' || options.host === 'localhost') {
    console.log('Listening on 127.0.0.1 only: use --host 0.0.0.0 (or an interface address) for workers on other machines');
  }
  console.log(`Scheduler at: ${scheduler.address}`);
  let dashboard: DashboardServer | undefined;
  if (dashboardAt !== undefined) {
    try {
      dashboard = await DashboardServer.start(scheduler, dashboardAt);
      console.log(`Dashboard at: ${dashboard.url}/status`);
    } catch (err) {
      // The scheduler is useful without its dashboard (e.g. the port is taken): say so and go on.
      console.log(`Dashboard not started: ${(err as Error).message}`);
    }
  }
  await scheduler.closed;
  await dashboard?.close();
  if (options.schedulerFile) rmSync(options.schedulerFile, { force: true });
  console.log('Scheduler closed');
  return 0;
}
