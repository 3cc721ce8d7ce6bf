// Test helpers for starting the real binaries: spawn with a bounded wait for a line, and a
// registry that kills whatever a test started, so no process outlives its test.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { rpc } from '@dd/comm';
import { purgeStaleLocalDirectories } from '@dd/worker';
import type { SchedulerIdentity } from '@dd/protocol';

export const repoRoot = resolve(__dirname, '..', '..');
export const binaries = {
  scheduler: resolve(repoRoot, 'apps/scheduler/bin/dd-scheduler.js'),
  worker: resolve(repoRoot, 'apps/worker/bin/dd-worker.js'),
};

export interface RunningProcess {
  child: ChildProcess;
  /** Every line printed so far, stdout and stderr interleaved. */
  lines: string[];
  /** Resolves with the first line (already printed or yet to come) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with all lines matching `pattern` once there are `count` of them. */
  waitForLines(pattern: RegExp, count: number, timeoutMs?: number): Promise<string[]>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

/**
 * How the process ended, for `toEqual({ code: 0, signal: null })`: when it did not exit cleanly
 * the report carries its output too, so a failure says why (a signal, a stack trace).
 */
export async function exitReport(p: RunningProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; output?: string }> {
  const { code, signal } = await p.exited;
  return code === 0 && signal === null ? { code, signal } : { code, signal, output: p.lines.join('\n') };
}

export function startProcess(script: string, args: string[], env: NodeJS.ProcessEnv = {}): RunningProcess {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  started.add(child);
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const l of listeners) l();
    });
  }
  // 'close' (not 'exit') so that every line the process printed has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('close', (code, signal) => {
      started.delete(child);
      res({ code, signal });
      for (const l of listeners) l();
    });
  });
  const waitForLines = (pattern: RegExp, count: number, timeoutMs = 20_000) =>
    new Promise<string[]>((res, rej) => {
      const check = () => {
        const matching = lines.filter((l) => pattern.test(l));
        if (matching.length >= count) {
          done();
          res(matching.slice(0, count));
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          rej(new Error(`process exited before printing ${count} x ${pattern}; output:\n${lines.join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`timed out after ${timeoutMs} ms waiting for ${count} x ${pattern}; output:\n${lines.join('\n')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  return {
    child,
    lines,
    waitForLines,
    waitForLine: (pattern, timeoutMs) => waitForLines(pattern, 1, timeoutMs).then((m) => m[0]!),
    exited,
  };
}

/** SIGTERM, then SIGKILL after `graceMs`, every process this module started that is still alive. */
export async function killAll(graceMs = 5_000): Promise<void> {
  await Promise.all([...started].map((child) => new Promise<void>((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      res();
    });
    child.kill('SIGTERM');
    child.kill('SIGCONT'); // a stopped process handles its SIGTERM only once it runs again
  })));
  // Workers killed on purpose (kill -9, the nanny's memory terminate) leave their directories.
  await purgeStaleLocalDirectories().catch(() => 0);
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pids of the direct children of `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 is the parent pid; the command name (field 2) may contain spaces, so split after ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/**
 * Starts dd-scheduler on a free port, without a dashboard (parallel tests must not compete for
 * :8787), and resolves once it serves. `args` are added to the command line.
 */
export async function startSchedulerProcess(...args: string[]): Promise<{ address: string; process: RunningProcess }> {
  const p = startProcess(binaries.scheduler, ['--port', '0', '--no-dashboard', ...args]);
  const address = (await p.waitForLine(/^Scheduler at: /, 30_000)).replace('Scheduler at: ', '');
  return { address, process: p };
}

/** The address of a scheduler started as by startSchedulerProcess. */
export async function startScheduler(...args: string[]): Promise<string> {
  return (await startSchedulerProcess(...args)).address;
}

/** The scheduler's `identity` rpc: its workers as it sees them. */
export async function schedulerIdentity(address: string, timeoutMs = 30_000): Promise<SchedulerIdentity> {
  const r = rpc(address);
  try {
    return await r.call<SchedulerIdentity>('identity', {}, { timeout: timeoutMs });
  } finally {
    await r.close();
  }
}

/** The addresses of the scheduler's workers, sorted. */
export async function workerAddresses(scheduler: string): Promise<string[]> {
  return Object.keys((await schedulerIdentity(scheduler)).workers).sort();
}

/**
 * A port that was free a moment ago, for a process that must listen on a known port (or listen
 * again on the same one after a restart). It comes from below the kernel's ephemeral range where
 * there is one: ports in that range are what every other `listen(0)` and outgoing connection on
 * the machine (the other test workers) receive, and one of them could take the port between this
 * check and the real listen.
 */
export async function freePort(): Promise<number> {
  const ephemeralLow = ephemeralRangeStart();
  if (ephemeralLow !== undefined && ephemeralLow > 20_000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = 20_000 + Math.floor(Math.random() * (ephemeralLow - 20_000));
      if (await canListen(candidate)) return candidate;
    }
  }
  return await new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolvePort(port));
    });
  });
}

function ephemeralRangeStart(): number | undefined {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : undefined;
  } catch {
    return undefined; // not Linux
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

/** A task that keeps its thread busy for `ms` (sent by source: self-contained). */
export const spin = (ms: number): number => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
  return ms;
};
