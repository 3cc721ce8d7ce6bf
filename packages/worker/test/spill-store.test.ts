import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GarbageDebt, LocalDirectoryError, MemoryMonitor, SpillStore, garbageCollector, garbageDebtSettings, workerProcessEnv, type MemoryFractions } from '@dd/worker';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-spill-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const filesIn = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d) : []);

describe('SpillStore', () => {
  test('spills the least recently used values beyond the target and reads them back on get', () => {
    const store = new SpillStore({ directory: path.join(dir, 'storage'), targetBytes: 3000 });
    for (let i = 0; i < 10; i++) store.set(`x-${i}`, Buffer.alloc(1000, i), 1000);
    expect(store.size).toBe(10);
    expect(store.memoryBytes).toBe(3000);
    expect(store.spilledBytes).toBe(7000);
    expect([0, 1, 2, 3, 4, 5, 6].every((i) => store.isSpilled(`x-${i}`))).toBe(true);
    expect(filesIn(path.join(dir, 'storage'))).toHaveLength(7);

    // Reading x-0 back makes it the most recent; the least recent in memory (x-7) goes out.
    const v = store.get('x-0') as Buffer;
    expect(Buffer.isBuffer(v)).toBe(true);
    expect(v.equals(Buffer.alloc(1000, 0))).toBe(true);
    expect(store.isSpilled('x-0')).toBe(false);
    expect(store.isSpilled('x-7')).toBe(true);
    expect(store.memoryBytes).toBe(3000);
    expect(store.stats).toMatchObject({ spilled: 8, unspilled: 1 });

    // A get refreshes recency: x-8 was used, so x-9 goes next.
    store.get('x-8');
    store.set('y', 'new', 1000);
    expect(store.isSpilled('x-9')).toBe(true);
    expect(store.isSpilled('x-8')).toBe(false);

    for (let i = 0; i < 10; i++) expect((store.get(`x-${i}`) as Buffer)[0]).toBe(i);
    expect(store.nbytes('x-3')).toBe(1000);
    expect([...store.keys()].sort()).toEqual([...Array.from({ length: 10 }, (_, i) => `x-${i}`), 'y'].sort());
  });

  test('disk writes and reads are timed for the task stream, each reported once', () => {
    const store = new SpillStore({ directory: path.join(dir, 'storage'), targetBytes: 1000 });
    const before = Date.now();
    store.set('a', Buffer.alloc(1000), 1000);
    store.set('b', Buffer.alloc(1000), 1000); // spills a
    store.get('a'); // reads a back, spills b
    const activity = store.takeDiskActivity();
    expect(activity.map((a) => a.action)).toEqual(['disk-write', 'disk-read', 'disk-write']);
    for (const a of activity) expect(a.start >= before && a.stop >= a.start).toBe(true);
    expect(store.takeDiskActivity()).toEqual([]);
  });

  test('plain data, Maps and typed arrays round-trip; delete removes the file', () => {
    const store = new SpillStore({ directory: dir, targetBytes: 0 });
    const values: Record<string, unknown> = {
      obj: { a: 1, b: [1, 'two', null], c: { d: true } },
      map: new Map([['k', 1]]),
      f64: new Float64Array([1.5, 2.5]),
      str: 'hello',
      undef: undefined,
    };
    for (const [k, v] of Object.entries(values)) store.set(k, v);
    expect(store.memoryBytes).toBe(0);
    expect(filesIn(dir)).toHaveLength(5);
    for (const [k, v] of Object.entries(values)) {
      expect(store.has(k)).toBe(true);
      expect(store.get(k)).toEqual(v);
    }
    store.set('gone', 'x');
    expect(store.isSpilled('gone')).toBe(true);
    const before = filesIn(dir).length;
    expect(store.delete('gone')).toBe(true);
    expect(store.has('gone')).toBe(false);
    expect(filesIn(dir)).toHaveLength(before - 1);
    expect(store.delete('gone')).toBe(false);
  });

  test('a value that cannot be serialized stays in memory with one warning', () => {
    const warnings: string[] = [];
    const store = new SpillStore({ directory: dir, targetBytes: 100, logger: { warn: (m) => warnings.push(m) } });
    const fn = () => 1;
    store.set('fn', fn, 500);
    store.set('a', 'aaa', 500);
    store.set('b', 'bbb', 500);
    expect(store.get('fn')).toBe(fn);
    expect(store.isSpilled('fn')).toBe(false);
    expect(store.isSpilled('a')).toBe(true);
    expect(store.memoryBytes).toBe(500);
    expect(store.stats.unspillable).toBe(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/cannot spill fn to disk; keeping it in memory/);
    // Never tried again.
    store.set('c', 'ccc', 500);
    expect(warnings).toHaveLength(1);
    expect(store.delete('fn')).toBe(true);
    expect(store.memoryBytes).toBe(0);
  });

  test('evict() spills one value at a time for the memory monitor; clear() removes files and directory', () => {
    const storage = path.join(dir, 'storage');
    const store = new SpillStore({ directory: storage, targetBytes: Infinity });
    store.set('a', 'a', 10);
    store.set('b', 'b', 20);
    expect(store.evict()).toBe(10);
    expect(store.evict()).toBe(20);
    expect(store.evict()).toBe(-1);
    expect(store.spilledBytes).toBe(30);
    store.clear();
    expect(fs.existsSync(storage)).toBe(false);
    expect(store.size).toBe(0);
  });
});

describe('SpillStore: a spill directory that cannot be made', () => {
  /** The warning of spilling one value into `directory`; the value must stay readable, in memory. */
  function spillWarning(directory: string): string {
    const warnings: string[] = [];
    const store = new SpillStore({ directory, targetBytes: 0, logger: { warn: (m: string) => warnings.push(m) } });
    store.set('a', 'kept');
    expect(store.get('a')).toBe('kept');
    expect(store.stats).toMatchObject({ spilled: 0, writeFailures: 1 });
    expect(warnings).toHaveLength(1);
    return warnings[0]!;
  }

  test('keeps the value in memory and warns with a LocalDirectoryError naming it and the cause; never makes its parents', () => {
    const removed = path.join(dir, 'removed'); // the local directory, removed under the worker
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    const cases: Array<[string, RegExp]> = [
      [path.join(removed, 'storage'), /ENOENT/],
      [path.join(file, 'storage'), /ENOTDIR/],
      [file, /ENOTDIR/],
      [path.join(dir, 'dangling'), /ENOENT/],
    ];
    const unwritable = path.join(dir, 'unwritable');
    fs.mkdirSync(unwritable, 0o500);
    if (process.getuid?.() !== 0) cases.push([path.join(unwritable, 'storage'), /EACCES/]); // root may write anyway
    for (const [directory, cause] of cases) {
      const warning = spillWarning(directory);
      expect(warning).toContain(`cannot write a to disk; keeping it in memory: Worker: cannot use local directory ${directory}: `);
      expect(warning).toMatch(cause);
    }
    expect(fs.existsSync(removed)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'nowhere'))).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  }, 10_000);

  test('the directory itself fails with LocalDirectoryError', () => {
    const store = new SpillStore({ directory: path.join(dir, 'removed', 'storage'), targetBytes: 0 });
    expect(() => store.directory).toThrow(LocalDirectoryError);
  });

  test('files that cannot be written (a full disk): values stay in memory and spill once writes work again; one warning a minute, the next saying how many failed meanwhile', () => {
    const warnings: string[] = [];
    const store = new SpillStore({ directory: dir, targetBytes: 0, logger: { warn: (m: string) => warnings.push(m) } });
    // The store names its files 1.dd, 2.dd, ...: directories in their place make every write fail.
    for (let i = 1; i <= 6; i++) fs.mkdirSync(path.join(dir, `${i}.dd`));
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(1_000_000);
      for (let i = 0; i < 5; i++) store.set(`k${i}`, `value ${i}`);
      now.mockReturnValue(1_000_000 + 61_000);
      store.set('k5', 'value 5');
    } finally {
      now.mockRestore();
    }
    // Each set tried the least recently used value once, and stopped at its failure.
    expect(store.stats).toMatchObject({ spilled: 0, writeFailures: 6 });
    for (let i = 0; i <= 5; i++) expect(store.get(`k${i}`)).toBe(`value ${i}`);
    // Once files can be written again, the values spill as before.
    for (let i = 1; i <= 6; i++) fs.rmdirSync(path.join(dir, `${i}.dd`));
    store.set('k6', 'value 6');
    expect(store.stats.spilled).toBeGreaterThan(0);
    expect(store.get('k0')).toBe('value 0');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^cannot write k0 to disk; keeping it in memory: .*EISDIR/);
    expect(warnings[1]).toMatch(/^cannot write k0 to disk; keeping it in memory: .*EISDIR.* \(4 more values could not be written since the last warning\)$/);
  });

  test('fails at once where Node\'s recursive mkdir would spin forever (under /proc)', () => {
    if (!fs.existsSync('/proc/self')) return;
    // mkdir /proc/forbidden is ENOENT although /proc exists: mkdirSync(..., { recursive: true })
    // retries that pair forever and freezes its thread, which no jest timeout can interrupt. So
    // the store runs in a child process (from dist/, as executor threads do), killed if it hangs.
    const spillStore = path.join(__dirname, '..', 'dist', 'spill-store.js');
    const script = `
      const { SpillStore } = require(${JSON.stringify(spillStore)});
      const store = new SpillStore({ directory: '/proc/forbidden/storage', targetBytes: 0, logger: { warn: (m) => console.log(m) } });
      store.set('a', 'x');
      console.log(store.get('a'));`;
    const started = Date.now();
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 5_000, killSignal: 'SIGKILL' });
    expect({ signal: child.signal, stderr: child.stderr }).toEqual({ signal: null, stderr: '' });
    expect(child.stdout.trim().split('\n')).toEqual([
      "cannot write a to disk; keeping it in memory: Worker: cannot use local directory /proc/forbidden/storage: ENOENT: no such file or directory, mkdir '/proc/forbidden/storage'",
      'x',
    ]);
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 15_000);
});

describe('SpillStore: what it lets go of', () => {
  test('reports the bytes of values it spills or deletes (for the garbage debt), not of values it keeps or reads back', () => {
    const released: number[] = [];
    const store = new SpillStore({ directory: dir, targetBytes: 250, onRelease: (n) => released.push(n) });
    store.set('a', Buffer.alloc(100, 1), 100);
    store.set('b', Buffer.alloc(100, 2), 100);
    expect(released).toEqual([]);
    store.set('c', Buffer.alloc(100, 3), 100); // 300 > 250: a is spilled
    expect(released).toEqual([100]);
    expect(store.get('a')).toEqual(Buffer.alloc(100, 1)); // back in memory; b spilled for it
    expect(released).toEqual([100, 100]);
    store.delete('c');
    expect(released).toEqual([100, 100, 100]);
    store.delete('b'); // on disk: nothing in memory to let go of
    expect(released).toEqual([100, 100, 100]);
  });

  test('with sharedMemory, large values come back in shared memory (an executor thread then needs no copy)', () => {
    const store = new SpillStore({ directory: dir, targetBytes: 0, sharedMemory: true });
    const big = Buffer.alloc(256 * 1024, 7);
    store.set('big', big);
    store.set('small', Buffer.from('tiny'));
    expect(store.isSpilled('big') && store.isSpilled('small')).toBe(true);
    const back = store.get('big') as Buffer;
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back.equals(big)).toBe(true);
    expect(back.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(store.get('small')).toEqual(Buffer.from('tiny'));
  });

  test('a large value is written without being joined into one buffer first, and reads back intact', () => {
    const store = new SpillStore({ directory: dir, targetBytes: 0 });
    const value = { header: 'h', body: Buffer.alloc(3 * 1024 * 1024, 9), n: [1, 2, 3] };
    store.set('v', value);
    expect(store.isSpilled('v')).toBe(true);
    const back = store.get('v') as typeof value;
    expect({ ...back, body: undefined }).toEqual({ ...value, body: undefined });
    expect(Buffer.isBuffer(back.body) && back.body.equals(value.body)).toBe(true); // (jest's toEqual walks 3 MiB slowly)
  });
});

describe('GarbageDebt', () => {
  test('collects once enough bytes became garbage, and only while the process is above the level', () => {
    let memory = 500;
    let collections = 0;
    const debt = new GarbageDebt({ everyBytes: 100, aboveBytes: 400, processMemory: () => memory, collect: () => collections++ });
    debt.add(60);
    expect(collections).toBe(0);
    debt.add(60); // 120 >= 100, memory 500 > 400
    expect(collections).toBe(1);
    memory = 300;
    debt.add(150); // enough debt, but memory is fine
    expect(collections).toBe(1);
    expect(debt.collectIfAbove(450)).toBe(true);
    expect(debt.collectIfAbove(350)).toBe(false);
    expect(collections).toBe(2);
  });

  test('settings follow the memory limit; none without one', () => {
    expect(garbageDebtSettings(0, 0.6, 0.7)).toBeUndefined();
    expect(garbageDebtSettings(1000 * 2 ** 20, false, false)).toBeUndefined();
    expect(garbageDebtSettings(1000 * 2 ** 20, 0.6, 0.7)).toEqual({ everyBytes: 50 * 2 ** 20, aboveBytes: 600 * 2 ** 20 });
    expect(garbageDebtSettings(10 * 2 ** 20, false, 0.7)).toEqual({ everyBytes: 4 * 2 ** 20, aboveBytes: 7 * 2 ** 20 });
  });

  test("V8's collector is available without --expose-gc, and frees unreachable buffers", async () => {
    const gc = garbageCollector();
    expect(typeof gc).toBe('function');
    let big: Buffer | undefined = Buffer.alloc(64 * 1024 * 1024, 1);
    const ref = new WeakRef(big);
    big = undefined;
    await new Promise((r) => setImmediate(r)); // WeakRefs hold until the end of the current job
    gc!();
    expect(ref.deref()).toBeUndefined();
  });

  test('worker processes start with a low malloc trim threshold unless the user set one', () => {
    expect(workerProcessEnv({ PATH: '/bin' })).toEqual({ PATH: '/bin', MALLOC_TRIM_THRESHOLD_: '65536' });
    expect(workerProcessEnv({ MALLOC_TRIM_THRESHOLD_: '0' })['MALLOC_TRIM_THRESHOLD_']).toBe('0');
  });
});

describe('MemoryMonitor', () => {
  const fractions: MemoryFractions = { target: 0.6, spill: 0.7, pause: 0.8, terminate: 0.95 };

  function monitor(store: SpillStore | undefined, f: MemoryFractions = fractions) {
    const pauses: boolean[] = [];
    const warnings: string[] = [];
    const m = new MemoryMonitor({
      limit: 1000,
      fractions: f,
      store,
      processMemory: () => 0,
      onPause: (p) => pauses.push(p),
      logger: { warn: (msg) => warnings.push(msg) },
    });
    return { m, pauses, warnings };
  }

  test('process memory above spill spills least recently used values until the estimate is under target', () => {
    const store = new SpillStore({ directory: dir, targetBytes: Infinity });
    for (let i = 0; i < 5; i++) store.set(`k${i}`, i, 100);
    const { m, pauses } = monitor(store);
    m.check(650); // under spill: nothing
    expect(store.spilledBytes).toBe(0);
    m.check(750); // 750 - 100 - 100 = 550 <= 600
    expect(store.spilledBytes).toBe(200);
    expect(store.isSpilled('k0') && store.isSpilled('k1')).toBe(true);
    expect(pauses).toEqual([]);
  });

  test('pauses above the pause fraction and resumes below it; warns when nothing is left to spill', () => {
    const store = new SpillStore({ directory: dir, targetBytes: Infinity });
    const { m, pauses, warnings } = monitor(store);
    m.check(850);
    expect(m.paused).toBe(true);
    m.check(900);
    expect(pauses).toEqual([true]);
    m.check(790);
    expect(m.paused).toBe(false);
    expect(pauses).toEqual([true, false]);
    expect(warnings.some((w) => /no data left to spill/.test(w))).toBe(true);
    expect(warnings.some((w) => /pausing/.test(w))).toBe(true);
    expect(warnings.some((w) => /resuming/.test(w))).toBe(true);
  });

  test('when spill files cannot be written, only the store warns (throttled), not "no data left to spill"', () => {
    const storeWarnings: string[] = [];
    const store = new SpillStore({ directory: dir, targetBytes: Infinity, logger: { warn: (m: string) => storeWarnings.push(m) } });
    for (let i = 0; i < 3; i++) store.set(`k${i}`, i, 100);
    for (let i = 1; i <= 10; i++) fs.mkdirSync(path.join(dir, `${i}.dd`)); // every write fails
    const { m, warnings } = monitor(store);
    const now = jest.spyOn(Date, 'now');
    try {
      for (let t = 0; t < 5; t++) {
        now.mockReturnValue(1_000_000 + t * 6_000); // past the monitor's 5 s warning interval each time
        m.check(750);
      }
    } finally {
      now.mockRestore();
    }
    expect(store.stats.writeFailures).toBe(5); // one failed write per check: the round stops there
    expect(store.spilledBytes).toBe(0);
    expect(warnings.filter((w) => /no data left to spill/.test(w))).toEqual([]);
    expect(storeWarnings).toHaveLength(1);
  });

  test('above spill it collects garbage first (at most once a second), and spills only if memory stays high', () => {
    const store = new SpillStore({ directory: dir, targetBytes: Infinity });
    for (let i = 0; i < 5; i++) store.set(`k${i}`, i, 100);
    const collected: number[] = [];
    const m = new MemoryMonitor({
      limit: 1000,
      fractions,
      store,
      processMemory: () => 0,
      onPause: () => undefined,
      collectGarbage: (memory) => (collected.push(memory), true),
      garbageIntervalMs: 60_000,
      logger: { warn: () => undefined },
    });
    m.check(750);
    expect(collected).toEqual([750]);
    expect(store.spilledBytes).toBe(0); // RSS shows the collection only later
    m.check(750); // still high, and no second collection this soon: spill
    expect(collected).toEqual([750]);
    expect(store.spilledBytes).toBe(200);
  });

  test('fractions set to false turn behaviours off', () => {
    const store = new SpillStore({ directory: dir, targetBytes: Infinity });
    store.set('a', 1, 100);
    const { m, pauses } = monitor(store, { ...fractions, spill: false, pause: false });
    m.check(10_000);
    expect(store.spilledBytes).toBe(0);
    expect(pauses).toEqual([]);
  });
});
