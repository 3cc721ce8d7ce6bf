// performanceReport(path, body): one self-contained HTML file about the enclosed work (task
// stream, durations by prefix, transfers, events), checked as text and, where Debian's Chromium
// is installed, rendered by it (screenshot in test-results/performance-report/).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { performanceReport, renderPerformanceReport } from '../src/index';
import { withCluster } from './harness';

jest.setTimeout(60_000);

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(__dirname, '..', '..', '..', 'test-results', 'performance-report');

function slowInc(x: number): Promise<number> {
  return new Promise((resolve) => setTimeout(() => resolve(x + 1), 15));
}
function total(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
function fails(x: number): number {
  throw new Error(`no ${x}`);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dd-report-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('writes a self-contained report of the enclosed work, and returns what the body returns', async () => {
  await withCluster({ workers: [{ executor: 'inline', nthreads: 2 }, { executor: 'inline', nthreads: 2 }] }, async ({ client }) => {
    const before = client.map(slowInc, [1000, 1001]); // outside the report
    await client.gather(before);
    const file = join(dir, 'report.html');
    const out = await performanceReport(file, async () => {
      const xs = client.map(slowInc, Array.from({ length: 24 }, (_, i) => i));
      client.logEvent('report-test', { step: 'submitted', n: 24 });
      const sum = client.submit(total, xs); // its inputs come from both workers: transfers
      await expect(client.submit(fails, 7)).rejects.toThrow('no 7');
      return await sum;
    }, { client, title: 'report <test>' });
    expect(out).toBe(300); // sum of slowInc(0..23)

    const html = readFileSync(file, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    // Self-contained: nothing to fetch (no URLs at all, no external scripts, styles or images).
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<(script|link|img|iframe)\b[^>]*\b(src|href)=/i);
    expect(html).toContain('<title>report &#60;test&#62;</title>');
    // The tasks of the body, not the ones before it.
    expect(html).toContain('<svg class="stream"');
    expect((html.match(/<rect class="bar compute"/g) ?? []).length).toBe(25); // 24 slowInc + total
    expect(html).toMatch(/<rect class="bar error"/);
    expect(html).toContain('slowInc-');
    for (const k of before) expect(html).not.toContain(k.key);
    expect(html).toMatch(/<td><i class="sw"[^>]*><\/i>slowInc<\/td><td class="num">24<\/td><td class="num">0<\/td>/);
    expect(html).toMatch(/<td><i class="sw"[^>]*><\/i>fails<\/td><td class="num">1<\/td><td class="num">1<\/td>/);
    // Workers do not report transfer start/stop times to the scheduler yet: the section says so.
    expect(html).toContain('<h2>Transfers</h2>');
    // The event logged inside.
    expect(html).toContain('report-test');
    expect(html).toContain('{&#34;step&#34;:&#34;submitted&#34;,&#34;n&#34;:24}');

    if (!existsSync(CHROMIUM)) {
      console.warn(`performance report not rendered: ${CHROMIUM} not found (apt-get install chromium)`);
      return;
    }
    mkdirSync(SHOTS, { recursive: true });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      await page.goto(`file://${file}`);
      expect(requests).toEqual([]);
      expect(await page.locator('svg.stream rect.bar').count()).toBeGreaterThanOrEqual(26);
      const box = await page.locator('svg.stream').boundingBox();
      expect(box?.width).toBeGreaterThan(500);
      expect(await page.locator('h2').allTextContents()).toEqual(['Task stream', 'Task durations by prefix', 'Transfers', 'Events']);
      await page.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

test('the report is written also when the body throws, and the error comes back', async () => {
  await withCluster({ workers: [{ executor: 'inline' }] }, async ({ client }) => {
    const file = join(dir, 'failed.html');
    await expect(performanceReport(file, async () => {
      await client.submit(slowInc, 1);
      throw new Error('body failed');
    }, { client })).rejects.toThrow('body failed');
    const html = readFileSync(file, 'utf8');
    expect((html.match(/<rect class="bar compute"/g) ?? []).length).toBe(1);
  });
});

test('renderPerformanceReport draws transfers and lanes from the records it is given', () => {
  const html = renderPerformanceReport({
    title: 't',
    start: 1000,
    stop: 2000,
    records: [
      { key: 'load-aaaaaaaaaaaaaaaa', worker: 'tcp://w1', status: 'OK', startstops: [{ action: 'compute', start: 1100, stop: 1400 }], nbytes: 2048 },
      { key: 'load-bbbbbbbbbbbbbbbb', worker: 'tcp://w1', status: 'OK', startstops: [{ action: 'compute', start: 1200, stop: 1300 }] },
      {
        key: 'sum-cccccccccccccccc',
        worker: 'tcp://w2',
        status: 'OK',
        startstops: [{ action: 'transfer', start: 1400, stop: 1450, source: 'tcp://w1' }, { action: 'compute', start: 1450, stop: 1500 }],
      },
    ],
    events: [['topic', 1.5, { a: 1 }], ['topic', 99, 'outside']],
  });
  // Two overlapping tasks on w1 take two rows; w2 one.
  expect(html).toMatch(/<rect class="bar compute" x="[\d.]+" y="2"/);
  expect(html).toMatch(/<rect class="bar compute" x="[\d.]+" y="20"/);
  expect(html).toMatch(/<rect class="bar transfer" x="[\d.]+" y="38"/);
  expect(html).toContain('<td>tcp://w1 → tcp://w2</td><td class="num">1</td><td class="num">50 ms</td>');
  expect(html).toMatch(/<\/i>load<\/td><td class="num">2<\/td><td class="num">0<\/td><td class="num">400 ms<\/td><td class="num">200 ms<\/td><td class="num">300 ms<\/td><td class="num">2.0 KiB<\/td>/);
  expect(html).toContain('<div><b>1</b>transfers (50 ms)</div>');
});

test('renderPerformanceReport without a task stream says so', () => {
  const html = renderPerformanceReport({ title: 't', start: 0, stop: 1000, records: [], events: [], note: 'the scheduler gave no task stream (unknown op)' });
  expect(html).toContain('No tasks finished during the report: the scheduler gave no task stream (unknown op).');
  expect(html).not.toContain('<svg class="stream"');
});
