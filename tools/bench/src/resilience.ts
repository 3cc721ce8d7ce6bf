// Resilience figures with the real binaries (not a test: numbers for the notes).
//
//   node tools/bench/dist/resilience.js [--rounds 3] [--ttl 3s] [--kills 4] [--kill-every-ms 1500]
//                                       [--task-ms 1] [--only detect,graph]
//
// 1. Time for the scheduler to drop a dead worker, from the signal to the worker missing from
//    the scheduler's identity (polled every 5 ms): clean close (SIGTERM: the worker unregisters),
//    kill -9 (the kernel closes its socket), SIGSTOP (nothing closes: the worker TTL decides).
//    Workers run with --no-nanny so nothing restarts them.
// 2. The 10 001-task layered graph of the resilience test (5 layers of 2 000 tasks of ~1 ms, two
//    dependencies each, and a sum) on 3 workers under the nanny: wall time with no kills, and
//    with a random worker killed -9 every --kill-every-ms (up to --kills times).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { rpc } from '@dd/comm';
import { Client } from '@dd/client';

const root = resolve(__dirname, '..', '..', '..');
const SCHEDULER = resolve(root, 'apps/scheduler/bin/dd-scheduler.js');
const WORKER = resolve(root, 'apps/worker/bin/dd-worker.js');

interface Proc {
  child: ChildProcess;
  lines: string[];
  waitFor(pattern: RegExp, count?: number, timeoutMs?: number): Promise<string[]>;
}

const procs = new Set<ChildProcess>();

function start(script: string, args: string[]): Proc {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(child);
  child.once('exit', () => procs.delete(child));
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  for (const s of [child.stdout!, child.stderr!]) {
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l);
      for (const f of listeners) f();
    });
  }
  const waitFor = (pattern: RegExp, count = 1, timeoutMs = 60_000) => new Promise<string[]>((res, rej) => {
    const check = () => {
      const m = lines.filter((l) => pattern.test(l));
      if (m.length >= count) {
        listeners.delete(check);
        clearTimeout(timer);
        res(m);
      }
    };
    const timer = setTimeout(() => {
      listeners.delete(check);
      rej(new Error(`timed out waiting for ${pattern}:\n${lines.join('\n')}`));
    }, timeoutMs);
    listeners.add(check);
    check();
  });
  return { child, lines, waitFor };
}

async function stopAll(): Promise<void> {
  await Promise.all([...procs].map((c) => new Promise<void>((res) => {
    if (c.exitCode !== null || c.signalCode !== null) return res();
    try {
      c.kill('SIGCONT');
    } catch {
      // gone
    }
    const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
    c.once('exit', () => {
      clearTimeout(t);
      res();
    });
    c.kill('SIGTERM');
  })));
}

async function workers(scheduler: string): Promise<string[]> {
  const r = rpc(scheduler);
  try {
    return Object.keys((await r.call<{ workers: Record<string, unknown> }>('identity', {}, { timeout: 30_000 })).workers);
  } finally {
    await r.close();
  }
}

async function startScheduler(args: string[] = []): Promise<string> {
  const p = start(SCHEDULER, ['--port', '0', '--no-dashboard', ...args]);
  return (await p.waitFor(/^Scheduler at: /))[0]!.replace('Scheduler at: ', '');
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

async function detection(kind: 'SIGTERM' | 'SIGKILL' | 'SIGSTOP', ttl: string): Promise<number> {
  const scheduler = await startScheduler(['--worker-ttl', ttl]);
  const w = start(WORKER, [scheduler, '--no-nanny', '--nthreads', '1', '--no-dashboard']);
  const address = (await w.waitFor(/^Worker at: /))[0]!.replace('Worker at: ', '');
  while (!(await workers(scheduler)).includes(address)) await new Promise((r) => setTimeout(r, 10));
  // Poll on a warm connection so that each poll is one request.
  const r = rpc(scheduler);
  await r.call('identity');
  const t0 = performance.now();
  w.child.kill(kind);
  let dt = NaN;
  for (;;) {
    const ident = await r.call<{ workers: Record<string, unknown> }>('identity', {}, { timeout: 30_000 });
    if (!(address in ident.workers)) {
      dt = performance.now() - t0;
      break;
    }
    if (performance.now() - t0 > 120_000) throw new Error(`${kind}: worker not removed within 120 s`);
    await new Promise((res) => setTimeout(res, 5));
  }
  await r.close();
  await stopAll();
  return dt;
}

const slowInc = (x: number, ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
  return x + 1;
};
const slowAdd = (a: number, b: number, ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
  return a + b;
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function layeredGraph(run: string, taskMs: number, width = 2000, layers = 5): { graph: Map<string | (string | number)[], unknown>; expected: number } {
  const graph = new Map<string | (string | number)[], unknown>();
  let values = Array.from({ length: width }, (_, i) => i + 1);
  for (let i = 0; i < width; i++) graph.set([run, 0, i], [slowInc, i, taskMs]);
  for (let l = 1; l < layers; l++) {
    for (let i = 0; i < width; i++) graph.set([run, l, i], [slowAdd, [run, l - 1, i], [run, l - 1, (i + 1) % width], taskMs]);
    values = values.map((v, i) => v + values[(i + 1) % width]!);
  }
  graph.set(`${run}-total`, [sum, Array.from({ length: width }, (_, i) => [run, layers - 1, i])]);
  return { graph, expected: values.reduce((a, b) => a + b, 0) };
}

async function graphRun(kills: number, everyMs: number, taskMs: number): Promise<{ ms: number; kills: number }> {
  const scheduler = await startScheduler(['--allowed-failures', '100']);
  const w = start(WORKER, [scheduler, '--nworkers', '3', '--nthreads', '1', '--no-dashboard']);
  await w.waitFor(/^Worker at: /, 3);
  while ((await workers(scheduler)).length < 3) await new Promise((r) => setTimeout(r, 20));
  const client = await Client.connect(scheduler, { heartbeatIntervalMs: 0 });
  try {
    const run = `g${Date.now()}`;
    const { graph, expected } = layeredGraph(run, taskMs);
    let done = false;
    let n = 0;
    const killer = (async () => {
      while (n < kills && !done) {
        await new Promise((r) => setTimeout(r, everyMs));
        if (done) break;
        const pids = childPids(w.child.pid!);
        const victim = pids[Math.floor(Math.random() * pids.length)];
        if (victim === undefined) continue;
        process.kill(victim, 'SIGKILL');
        n++;
      }
    })();
    const t0 = performance.now();
    const result = await client.get(graph, `${run}-total`);
    const ms = performance.now() - t0;
    done = true;
    await killer;
    if (result !== expected) throw new Error(`wrong result ${String(result)}, expected ${expected}`);
    return { ms, kills: n };
  } finally {
    await client.close().catch(() => undefined);
    await stopAll();
  }
}

function arg(args: string[], flag: string, dflt: string): string {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] ?? dflt : dflt;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

export async function main(args: string[]): Promise<void> {
  const rounds = Number(arg(args, '--rounds', '3'));
  const ttl = arg(args, '--ttl', '3s');
  const kills = Number(arg(args, '--kills', '4'));
  const every = Number(arg(args, '--kill-every-ms', '1500'));
  const taskMs = Number(arg(args, '--task-ms', '1'));
  const only = arg(args, '--only', 'detect,graph').split(',');
  const out: Record<string, unknown> = {};
  for (const kind of only.includes('detect') ? (['SIGTERM', 'SIGKILL', 'SIGSTOP'] as const) : []) {
    const ms: number[] = [];
    for (let i = 0; i < rounds; i++) ms.push(await detection(kind, ttl));
    out[`detect_${kind}_ms`] = ms.map((x) => Math.round(x));
    console.log(`detect ${kind} (worker TTL ${ttl}, heartbeat 1 s): median ${median(ms).toFixed(0)} ms of ${ms.map((x) => x.toFixed(0)).join(', ')}`);
  }
  const base: number[] = [];
  const killed: number[] = [];
  const killCounts: number[] = [];
  for (let i = 0; i < (only.includes('graph') ? rounds : 0); i++) {
    base.push((await graphRun(0, every, taskMs)).ms);
    const k = await graphRun(kills, every, taskMs);
    killed.push(k.ms);
    killCounts.push(k.kills);
  }
  out['graph_no_kills_ms'] = base.map((x) => Math.round(x));
  out['graph_kills_ms'] = killed.map((x) => Math.round(x));
  out['graph_kills'] = killCounts;
  if (base.length > 0) console.log(`10 001-task graph (tasks busy ${taskMs} ms), 3 workers: no kills median ${median(base).toFixed(0)} ms (${base.map((x) => x.toFixed(0)).join(', ')}); ` +
    `with kill -9 every ${every} ms (kills ${killCounts.join(', ')}): median ${median(killed).toFixed(0)} ms (${killed.map((x) => x.toFixed(0)).join(', ')}); ` +
    `slowdown x${(median(killed) / median(base)).toFixed(2)}`);
  console.log(JSON.stringify(out));
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    async (err) => {
      console.error(err);
      await stopAll();
      process.exit(1);
    },
  );
}
