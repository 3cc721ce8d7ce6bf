// dd-worker's command line, compiled once into the options the supervisor and workers use.

import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { parseBytes, parseResources, parseTimedelta } from '@dd/protocol';
import { getAddressHost, getLocalIp, parseAddress, readTlsFiles } from '@dd/comm';

export interface WorkerCliArgs {
  nthreads?: string;
  nworkers: string;
  name?: string;
  memoryLimit: string;
  resources?: string;
  localDirectory?: string;
  nanny: boolean;
  nannyPort: string;
  schedulerFile?: string;
  lifetime?: string;
  deathTimeout?: string;
  host?: string;
  workerPort: string;
  dashboardAddress: string;
  dashboard: boolean;
  tlsCaFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  preload?: string[];
}

/** What one worker process is started with (JSON-serialisable: it crosses a fork). */
export interface WorkerProcessOptions {
  scheduler: string;
  listen: string;
  nthreads: number;
  name?: string;
  memoryLimit: number;
  resources: Record<string, number>;
  localDirectory?: string;
  deathTimeoutMs?: number;
  /** Memory fractions of memoryLimit (target, spill, pause, terminate; @dd/worker's `memory`). */
  memory?: { target?: number | false; spill?: number | false; pause?: number | false; terminate?: number | false };
  /** HTTP /health, /metrics, /status of the worker (@dd/worker's dashboardAddress). */
  dashboardAddress?: string;
  /** Modules whose ddSetup(worker) runs at start (@dd/worker's `preload`); paths made absolute. */
  preload?: string[];
  /** TLS material as PEM text (@dd/worker's `comm`), for tls:// and wss:// schedulers. */
  comm?: { ca: string; cert: string; key: string };
}

export interface CompiledWorkerCli {
  nworkers: number;
  nanny: boolean;
  /** Where the nanny serves restart/identity (tcp://HOST:PORT, tls:// in a TLS cluster); only with the nanny. */
  nannyAddress?: string;
  /** TLS material of the workers, which the nanny serves with too. */
  comm?: WorkerProcessOptions['comm'];
  lifetimeMs?: number;
  workers: WorkerProcessOptions[];
}

export function buildCommand(): Command {
  return new Command('dd-worker')
    .description('Run dd worker processes that connect to a scheduler.')
    .argument('[address]', 'scheduler address, e.g. tcp://127.0.0.1:8786 (or use --scheduler-file)')
    .option('--nthreads <n>', 'threads per worker process (default: cores / nworkers)')
    .option('--nworkers <n>', 'number of worker processes', '1')
    .option('--name <name>', 'worker name (with --nworkers N, workers are named NAME-0 .. NAME-N-1)')
    .option('--memory-limit <bytes>', 'memory per worker: "auto" (share of total memory by threads), bytes, "4GB", or 0 for none', 'auto')
    .option('--resources <spec>', 'abstract resources, e.g. "GPU=2 MEM=10e9"')
    .option('--local-directory <dir>', 'directory for worker files (spilled data, uploads)')
    .option('--no-nanny', 'run the worker inside this process instead of under a nanny (which restarts it when it dies or exceeds 95% of its memory limit)')
    .option('--nanny-port <port>', 'port where the nanny serves restart and identity (0 picks a free port)', '0')
    .option('--scheduler-file <file>', 'read the scheduler address from this JSON file')
    .option('--lifetime <duration>', 'close each worker after this long, e.g. "1h"')
    .option('--death-timeout <duration>', 'close a worker that cannot reach the scheduler for this long, e.g. "5m" (default 60s)')
    .option('--host <host>', 'interface workers listen on (default: loopback for a loopback scheduler, else this machine\'s address)')
    .option('--worker-port <port>', 'port for the worker to listen on (0 picks a free port; with --nworkers, each next port)', '0')
    .option('--dashboard-address <address>', 'where each worker serves /health, /metrics and /status: ":PORT" or "HOST:PORT" (:0 picks a free port; with --nworkers, each next port)', ':0')
    .option('--no-dashboard', 'do not serve the worker HTTP endpoints')
    .option('--preload <module>', 'a module whose ddSetup(worker) runs in each worker before it registers (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--tls-ca-file <file>', 'CA certificate (PEM) that the scheduler, peers and clients must be signed by (tls/wss)')
    .option('--tls-cert <file>', 'this worker\'s certificate (PEM), presented to the scheduler, peers and clients')
    .option('--tls-key <file>', 'this worker\'s private key (PEM)')
    .showHelpAfterError()
    .exitOverride();
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function schedulerAddressFrom(address: string | undefined, schedulerFile: string | undefined): string {
  if (address && schedulerFile) throw new Error('give either a scheduler address or --scheduler-file, not both');
  if (address) return address;
  if (!schedulerFile) throw new Error('a scheduler address is required, e.g. dd-worker tcp://127.0.0.1:8786 (or --scheduler-file F)');
  let parsed: { address?: unknown };
  try {
    parsed = JSON.parse(readFileSync(schedulerFile, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read scheduler file ${schedulerFile}: ${(err as Error).message}`);
  }
  if (typeof parsed.address !== 'string') throw new Error(`scheduler file ${schedulerFile} has no "address"`);
  return parsed.address;
}

/** "auto" gives each worker the share of the machine's memory that its threads are of the cores. */
export function memoryLimitFor(text: string, nthreads: number): number {
  if (text === 'auto') {
    return Math.floor(totalmem() * Math.min(1, nthreads / availableParallelism()));
  }
  const asFraction = Number(text);
  if (Number.isFinite(asFraction) && asFraction > 0 && asFraction <= 1) return Math.floor(totalmem() * asFraction);
  return parseBytes(text);
}

/** The three --tls-* files, read; all or none of them. A tls/wss scheduler needs them. */
function tlsMaterial(args: WorkerCliArgs, scheme: string): WorkerProcessOptions['comm'] {
  const tls = readTlsFiles({ caFile: args.tlsCaFile, certFile: args.tlsCert, keyFile: args.tlsKey });
  if (tls === undefined && (scheme === 'tls' || scheme === 'wss')) {
    throw new Error(`a ${scheme}:// scheduler needs --tls-ca-file, --tls-cert and --tls-key`);
  }
  return tls;
}

function defaultHost(scheduler: string): string {
  const host = getAddressHost(scheduler);
  const loopback = host === 'localhost' || host.startsWith('127.') || host === '::1' || parseAddress(scheduler)[0] === 'inproc';
  return loopback ? '127.0.0.1' : getLocalIp();
}

export function compileWorkerCli(address: string | undefined, args: WorkerCliArgs): CompiledWorkerCli {
  const scheduler = schedulerAddressFrom(address, args.schedulerFile);
  const nworkers = positiveInt(args.nworkers, '--nworkers');
  if (!args.nanny && nworkers > 1) throw new Error('--no-nanny runs one worker in this process; it cannot be combined with --nworkers > 1');
  const nthreads = args.nthreads === undefined
    ? Math.max(1, Math.floor(availableParallelism() / nworkers))
    : positiveInt(args.nthreads, '--nthreads');
  const memoryLimit = memoryLimitFor(args.memoryLimit, nthreads);
  const resources = args.resources ? parseResources(args.resources) : {};
  const deathTimeoutMs = args.deathTimeout ? parseTimedelta(args.deathTimeout) : undefined;
  const lifetimeMs = args.lifetime ? parseTimedelta(args.lifetime) : undefined;
  const host = args.host ?? defaultHost(scheduler);
  const basePort = Number(args.workerPort);
  if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65535) throw new Error(`invalid --worker-port ${JSON.stringify(args.workerPort)}`);
  const scheme = parseAddress(scheduler)[0] === 'inproc' ? 'tcp' : parseAddress(scheduler)[0];
  const bracketed = host.includes(':') ? `[${host}]` : host;
  const comm = tlsMaterial(args, scheme);
  // Paths as given on this command line's directory (the worker processes share it, but a
  // worker's cwd option may differ); package names resolve from the worker's directory.
  const preload = (args.preload ?? []).map((m) => (m.startsWith('.') || isAbsolute(m) ? resolve(m) : m));

  const workers: WorkerProcessOptions[] = [];
  for (let i = 0; i < nworkers; i++) {
    const port = basePort === 0 ? 0 : basePort + i;
    workers.push({
      scheduler,
      listen: `${scheme}://${bracketed}:${port}`,
      nthreads,
      ...(args.name !== undefined ? { name: nworkers > 1 ? `${args.name}-${i}` : args.name } : {}),
      memoryLimit,
      resources,
      ...(args.localDirectory !== undefined ? { localDirectory: args.localDirectory } : {}),
      ...(deathTimeoutMs !== undefined ? { deathTimeoutMs } : {}),
      ...(comm !== undefined ? { comm } : {}),
      ...(preload.length > 0 ? { preload } : {}),
      ...(args.dashboard !== false ? { dashboardAddress: args.dashboardAddress.replace(/\d+$/, (p) => (Number(p) === 0 ? p : String(Number(p) + i))) } : {}),
    });
  }
  const nannyPort = Number(args.nannyPort ?? '0');
  if (!Number.isInteger(nannyPort) || nannyPort < 0 || nannyPort > 65535) throw new Error(`invalid --nanny-port ${JSON.stringify(args.nannyPort)}`);
  // In a TLS cluster the nanny serves over TLS too (tls:// also for a wss:// scheduler: the
  // scheduler's pool reaches it with the same certificates), so only holders of a certificate
  // of the cluster's CA can restart workers.
  const nannyAddress = args.nanny ? `${comm !== undefined ? 'tls' : 'tcp'}://${bracketed}:${nannyPort}` : undefined;
  return {
    nworkers,
    nanny: args.nanny,
    ...(nannyAddress !== undefined ? { nannyAddress } : {}),
    ...(lifetimeMs !== undefined ? { lifetimeMs } : {}),
    ...(comm !== undefined ? { comm } : {}),
    workers,
  };
}
