// Browser tests: Debian's Chromium (never a downloaded browser), driven by playwright-core, loads
// the live pages of a cluster doing work and checks that workers and task bars appear and update.
// Skipped, with a message, only where /usr/bin/chromium is absent (CI installs it).

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { slowInc, startCluster, type TestCluster } from './cluster';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const SHOTS = join(__dirname, '..', '..', '..', 'test-results', 'dashboard');
if (!haveChromium) console.warn(`dashboard browser tests skipped: ${CHROMIUM} not found (apt-get install chromium)`);
const maybe = haveChromium ? describe : describe.skip;

jest.setTimeout(60_000);

maybe('dashboard in Chromium', () => {
  let c: TestCluster;
  let context: BrowserContext;
  let profile: string;
  let keep: unknown[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'dd-chromium-'));
    c = await startCluster({ nWorkers: 2, nthreads: 2 });
    // A fresh profile directory per run (playwright passes it as --user-data-dir).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      viewport: { width: 1280, height: 720 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    keep = [];
    await context?.close().catch(() => undefined);
    await c?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** Work that keeps the cluster busy for a while: waves of tasks of two prefixes. */
  function work(n: number): void {
    keep.push(...c.client.map(slowInc, Array.from({ length: n }, (_, i) => i + keep.length * 1000)));
    async function double(x: number): Promise<number> {
      await new Promise((r) => setTimeout(r, 30));
      return 2 * x;
    }
    keep.push(...c.client.map(double, Array.from({ length: n }, (_, i) => i + keep.length * 1000)));
  }

  test('/status shows worker rows, task bars that update, progress and memory', async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${c.url}/status`);
    await page.waitForSelector('#conn.live');
    // One row per worker thread.
    await page.waitForFunction(() => document.getElementById('stream')?.dataset['rows'] === '4');
    work(60);
    await page.waitForFunction(() => Number(document.getElementById('stream')?.dataset['bars'] ?? 0) > 5);
    const first = Number(await page.getAttribute('#stream', 'data-bars'));
    const updates = Number(await page.getAttribute('body', 'data-updates'));
    work(60);
    // More bars arrive, and the page keeps receiving updates, without a reload.
    await page.waitForFunction((n) => Number(document.getElementById('stream')?.dataset['bars'] ?? 0) > n, first);
    await page.waitForFunction((n) => Number(document.body.dataset['updates'] ?? 0) > n + 2, updates);
    await page.waitForSelector('#progress .bar[data-prefix="slowInc"]');
    await page.waitForSelector('#progress .bar[data-prefix="double"]');
    expect(await page.locator('#memory .bar').count()).toBe(2);
    expect(await page.textContent('#stats')).toMatch(/workers\s*2/);
    await page.locator('body').screenshot({ path: join(SHOTS, 'status.png') });
    expect(errors).toEqual([]);
    await page.close();
  });

  test('/workers lists the workers and updates their numbers', async () => {
    const page = await context.newPage();
    await page.goto(`${c.url}/workers`);
    await page.waitForFunction(() => document.querySelectorAll('#workers-table tbody tr').length === 2);
    for (const w of c.workers) {
      const row = page.locator(`#workers-table tbody tr[data-address="${w.address}"]`);
      expect(await row.count()).toBe(1);
      expect(await row.textContent()).toContain(w.address);
    }
    // Work shows up as processing, then finishes: the table follows without a reload.
    work(40);
    await page.waitForFunction(() => [...document.querySelectorAll('#workers-table td.processing')].some((td) => Number(td.textContent) > 0));
    await page.screenshot({ path: join(SHOTS, 'workers.png') });
    await page.waitForFunction(() => [...document.querySelectorAll('#workers-table td.processing')].every((td) => td.textContent === '0'), undefined, { timeout: 30_000 });
    await page.close();
  });

  test('/tasks, /graph and an info page render', async () => {
    const page = await context.newPage();
    await page.goto(`${c.url}/tasks`);
    await page.waitForFunction(() => Number(document.getElementById('stream')?.dataset['bars'] ?? 0) > 0);
    await page.goto(`${c.url}/graph`);
    await page.waitForFunction(() => Number(document.getElementById('graph')?.dataset['nodes'] ?? 0) > 0);
    await page.goto(`${c.url}/info/main/workers.html`);
    expect(await page.textContent('main')).toContain('dash-worker-1');
    await page.close();
  });
});
