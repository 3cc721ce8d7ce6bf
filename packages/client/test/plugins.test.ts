// Scheduler plugins, worker plugins and uploaded files end to end.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { preload, type SchedulerPlugin } from '@dd/scheduler';
import { Client, RemoteError, ref } from '../src/index';
import { until, withCluster } from './harness';
import { inc } from './task-functions';

jest.setTimeout(60_000);

const inline = { executor: 'inline' as const };

afterEach(() => jest.restoreAllMocks());

describe('scheduler plugins', () => {
  test('hooks see graphs, transitions, workers and clients; a throwing plugin is logged and changes nothing', async () => {
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    await withCluster({ workers: [inline] }, async ({ client, scheduler, startWorker }) => {
      const seen: string[] = [];
      const toMemory: string[] = [];
      const plugin: SchedulerPlugin = {
        name: 'recorder',
        start: () => void seen.push('start'),
        updateGraph: (_s, info) => void seen.push(`graph ${info.keys.length} ${info.client === client.id}`),
        transition: (key, _start, finish) => {
          if (finish === 'memory') toMemory.push(key);
        },
        addWorker: (_s, w) => void seen.push(`+worker ${w}`),
        removeWorker: (_s, w) => void seen.push(`-worker ${w}`),
        addClient: (s, c) => void seen.push(`+client ${c} ${s === scheduler}`),
        removeClient: (_s, c) => void seen.push(`-client ${c}`),
        close: () => void seen.push('close'),
      };
      expect(await scheduler.addPlugin(plugin)).toBe('recorder');
      await scheduler.addPlugin({
        transition() {
          throw new Error('broken transition hook');
        },
        updateGraph() {
          throw new Error('broken graph hook');
        },
      }, { name: 'broken' });
      const xs = client.map(inc, [1, 2, 3]);
      expect(await client.gather(xs)).toEqual([2, 3, 4]);
      expect(toMemory.sort()).toEqual(xs.map((f) => f.key).sort());
      expect(seen).toEqual(['start', 'graph 3 true']);
      const w = await startWorker(inline);
      await until(() => seen.includes(`+worker ${w.address}`));
      await w.close();
      await until(() => seen.includes(`-worker ${w.address}`));
      const other = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
      await until(() => seen.includes(`+client ${other.id} true`));
      await other.close();
      await until(() => seen.includes(`-client ${other.id}`));
      expect(errors.mock.calls.some((c) => String(c.join(' ')).includes('broken'))).toBe(true);
      expect(scheduler.removePlugin('broken')).toBe(true);
      expect(await client.submit(inc, 10)).toBe(11);
      await scheduler.close();
      expect(seen.at(-1)).toBe('close');
    });
  });

  test('a large map is placed in slices, but plugins see it once, whole, after all of it is in the state', async () => {
    await withCluster({ workers: [inline, inline] }, async ({ client, scheduler }) => {
      const graphs: Array<{ keys: number; tasks: number; known: number }> = [];
      await scheduler.addPlugin({
        name: 'graphs',
        updateGraph: (_s, info) => void graphs.push({
          keys: info.keys.length,
          tasks: info.tasks.length,
          known: info.keys.filter((k) => scheduler.state.tasks.has(k)).length,
        }),
      });
      const xs = client.map(inc, Array.from({ length: 2500 }, (_, i) => i));
      expect(await client.gather(xs)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
      expect(graphs).toEqual([{ keys: 2500, tasks: 2500, known: 2500 }]);
      // One submission, one priority generation, in map order.
      const priorities = xs.map((f) => scheduler.state.tasks.get(f.key)?.priority);
      expect(new Set(priorities.map((p) => p?.[1])).size).toBe(1);
      expect(priorities.map((p) => p?.[2])).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    });
  });

  test('preload runs a module\'s ddSetup(scheduler)', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    jest.spyOn(console, 'error').mockImplementation(() => undefined);
    await withCluster({ workers: [], client: false }, async ({ scheduler }) => {
      await preload(scheduler, path.join(__dirname, '..', '..', 'scheduler', 'test', 'fixtures', 'preload-plugin.js'));
      expect(log).toHaveBeenCalledWith(`preload ran on ${scheduler.id}`);
      await expect(preload(scheduler, path.join(__dirname, 'fixtures', 'plugin.js'))).rejects.toThrow(/exports no ddSetup/);
    });
  });
});

describe('worker plugins', () => {
  test('by source on current and future workers; setup, transition, replace (teardown), errors reported not fatal', async () => {
    const warn = jest.fn();
    jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    await withCluster({ workers: [inline, inline] }, async ({ client, workers, startWorker }) => {
      for (const w of workers) (w.options as { logger: unknown }).logger = { warn };
      const plugin = {
        tag: 'v1',
        count: 0,
        setup(worker: { address: string }) {
          (globalThis as Record<string, unknown>)['__ddPluginLog'] ??= [];
          ((globalThis as Record<string, unknown>)['__ddPluginLog'] as string[]).push(`setup ${this.tag} ${worker.address}`);
        },
        teardown(worker: { address: string }) {
          ((globalThis as Record<string, unknown>)['__ddPluginLog'] as string[]).push(`teardown ${this.tag} ${worker.address}`);
        },
        transition(_key: string, _start: string, finish: string) {
          if (finish === 'memory') this.count += 1;
        },
      };
      const res = await client.registerWorkerPlugin(plugin, { name: 'counter' });
      expect(Object.values(res)).toEqual(['OK', 'OK']);
      await client.gather(client.map(inc, [1, 2, 3, 4]));
      const counts = await client.run(function (this: { plugins: { get(n: string): { count: number; tag: string } | undefined } }) {
        const p = this.plugins.get('counter');
        return p === undefined ? -1 : p.count;
      });
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(4);

      const late = await startWorker(inline);
      await until(async () => ((await client.run({ workers: [late.address] }, function (this: { plugins: { names: string[] } }) {
        return this.plugins.names;
      }))[late.address] as string[]).includes('counter'));

      const v2 = { ...plugin, tag: 'v2' };
      await client.registerWorkerPlugin(v2, { name: 'counter' });
      // Plugins run in the host realm (jest's globalThis is another): read the log there.
      const readLog = async () => Object.values(await client.run(() => (globalThis as Record<string, unknown>)['__ddPluginLog'] as string[]))[0]!;
      let log = await readLog();
      for (const w of [...workers]) {
        expect(log).toContain(`setup v1 ${w.address}`);
        expect(log).toContain(`teardown v1 ${w.address}`);
        expect(log).toContain(`setup v2 ${w.address}`);
      }

      const broken = await client.registerWorkerPlugin({
        setup() {
          throw new TypeError('cannot set up');
        },
        transition() {
          throw new Error('bad transition');
        },
      }, { name: 'broken' });
      for (const r of Object.values(broken)) {
        expect(r).toBeInstanceOf(RemoteError);
        expect((r as RemoteError).remoteName).toBe('TypeError');
      }
      expect(await client.gather(client.map(inc, [10, 20]))).toEqual([11, 21]);
      expect(warn.mock.calls.some((c) => String(c[0]).includes('bad transition'))).toBe(true);
      await client.unregisterWorkerPlugin('broken');
      await expect(client.registerWorkerPlugin({ foo: 1 } as object)).rejects.toThrow(/none of setup, teardown, transition/);
      await late.close();
      log = await readLog();
      expect(log).toContain(`teardown v2 ${late.address}`);
    });
  });

  test('by module reference (a class)', async () => {
    await withCluster({ workers: [inline] }, async ({ client, workers }) => {
      const res = await client.registerWorkerPlugin(ref(path.join(__dirname, 'fixtures', 'plugin.js'), 'MemoryCounter'));
      expect(Object.values(res)).toEqual(['OK']);
      await client.gather(client.map(inc, [1, 2]));
      const name = `${path.join(__dirname, 'fixtures', 'plugin.js')}#MemoryCounter`;
      const state = await client.run(function (this: { plugins: { get(n: string): unknown } }, n: string) {
        const p = this.plugins.get(n) as { n: number; worker: string };
        return { n: p.n, worker: p.worker };
      }, name);
      expect(state[workers[0]!.address]).toEqual({ n: 2, worker: workers[0]!.address });
    });
  });
});

describe('workers that join later', () => {
  test('get the plugins and uploads before they run any task (a task restricted to the new worker, waiting for it, uses both)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-upload-test-'));
    try {
      const mod = `times_${process.pid}_${Date.now()}.js`;
      fs.writeFileSync(path.join(dir, mod), 'exports.times = (a, b) => a * b;\n');
      await withCluster({ workers: [inline] }, async ({ client, startWorker }) => {
        // A slow setup that leaves a marker where the task will look for it: a worker that ran
        // tasks before its plugins were set up would fail the task (no marker).
        await client.registerWorkerPlugin({
          async setup(worker: { uploadDirectory: string }) {
            await new Promise((r) => setTimeout(r, 100));
            const fs = require('node:fs');
            fs.mkdirSync(worker.uploadDirectory, { recursive: true });
            fs.writeFileSync(require('node:path').join(worker.uploadDirectory, 'plugin-marker'), '7');
          },
        }, { name: 'marker' });
        await client.uploadFile(path.join(dir, mod));
        const task = (m: string, i: number): number => {
          const fs = require('node:fs');
          const path = require('node:path');
          const marker = Number(fs.readFileSync(path.join(path.dirname(require.resolve(m)), 'plugin-marker'), 'utf8'));
          return require(m).times(marker, 3) + i;
        };
        let i = 0;
        for (const executor of ['inline', 'threads'] as const) {
          for (let round = 0; round < 3; round++, i++) {
            const name = `late-${executor}-${round}`;
            // Submitted first: the task waits (no-worker) and goes out the moment the worker joins.
            const f = client.options({ workers: [name], pure: false }).submit(task, mod, i);
            const w = await startWorker({ name, executor });
            expect(w.plugins.names).toContain('marker');
            expect(await f).toBe(21 + i);
            expect(fs.readFileSync(path.join(w.uploadDirectory!, mod), 'utf8')).toContain('times');
            await w.close();
          }
        }
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('uploadFile', () => {
  test('a module file and a directory reach current and future workers (thread pool executor) and tasks import them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-upload-test-'));
    try {
      const mod = `triple_${process.pid}_${Date.now()}.js`;
      fs.writeFileSync(path.join(dir, mod), 'exports.triple = (x) => 3 * x;\n');
      const pkg = `pkg_${process.pid}_${Date.now()}`;
      fs.mkdirSync(path.join(dir, pkg, 'lib'), { recursive: true });
      fs.writeFileSync(path.join(dir, pkg, 'index.js'), "exports.shout = (s) => require('./lib/upper.js').upper(s) + '!';\n");
      fs.writeFileSync(path.join(dir, pkg, 'lib', 'upper.js'), 'exports.upper = (s) => s.toUpperCase();\n');
      await withCluster({ nWorkers: 2 }, async ({ client, workers, startWorker }) => {
        expect((await client.uploadFile(path.join(dir, mod))).sort()).toEqual(workers.map((w) => w.address).sort());
        await client.uploadFile(path.join(dir, pkg));
        for (const w of workers) expect(fs.existsSync(path.join(w.uploadDirectory!, mod))).toBe(true);
        const xs = client.map(ref<(x: number) => number>(mod, 'triple'), [1, 2, 3, 4]);
        expect(await client.gather(xs)).toEqual([3, 6, 9, 12]);
        expect(await client.submit(ref<(s: string) => string>(pkg, 'shout'), 'hi')).toBe('HI!');
        // Inside a task function by require (resolved in the upload directory).
        expect(await client.submit((m: string) => require(m).triple(5), mod)).toBe(15);

        const late = await startWorker({ executor: 'inline' });
        await until(() => fs.existsSync(path.join(late.uploadDirectory!, pkg, 'lib', 'upper.js')));
        const onLate = await client.run({ workers: [late.address] }, ref<(s: string) => string>(pkg, 'shout'), 'late');
        expect(onLate[late.address]).toBe('LATE!');
        await expect(client.uploadFile(path.join(dir, 'missing.js'))).rejects.toThrow(/ENOENT/);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
