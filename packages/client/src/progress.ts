// progress(futures): watch futures finish, one bar per task prefix. On a TTY the bars are redrawn
// in place (throttled); elsewhere (a pipe, a log file, CI) plain lines are printed now and then
// and a summary at the end. Resolves once every future is done, however it ended (finished,
// erred, cancelled, lost); it never rejects for a task's failure: await the futures for that.

import { keySplit } from '@dd/protocol';
import { isFuture, type Future } from './future';

export interface ProgressStream {
  write(chunk: string): unknown;
  /** A terminal: bars redrawn in place. */
  isTTY?: boolean;
  /** Terminal width; bars fit in it. */
  columns?: number;
}

export interface ProgressOptions {
  /** Where to draw. Default process.stderr (stdout stays free for results). */
  stream?: ProgressStream;
  /** Redraw at most this often, ms. Default 100 on a TTY, 2000 for plain lines. */
  intervalMs?: number;
  /** Bar width in characters (TTY). Default: what fits in the terminal, at most 40. */
  width?: number;
}

export interface PrefixProgressCount {
  prefix: string;
  total: number;
  finished: number;
  erred: number;
  /** Cancelled or lost. */
  other: number;
}

export interface ProgressSummary {
  total: number;
  finished: number;
  erred: number;
  other: number;
  elapsedMs: number;
  prefixes: PrefixProgressCount[];
}

type Nested = Future | readonly Nested[] | { readonly [k: string]: Nested };

/**
 * Shows the progress of `futures` (a Future, or arrays / plain objects of them) per task prefix
 * and resolves with the counts once all are done.
 */
export function progress(futures: Nested, options: ProgressOptions = {}): Promise<ProgressSummary> {
  const stream: ProgressStream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const intervalMs = options.intervalMs ?? (tty ? 100 : 2000);
  const start = Date.now();

  const byKey = new Map<string, Future>();
  collect(futures, byKey);
  const groups = new Map<string, PrefixProgressCount>();
  for (const key of byKey.keys()) {
    const prefix = keySplit(key);
    let g = groups.get(prefix);
    if (g === undefined) groups.set(prefix, (g = { prefix, total: 0, finished: 0, erred: 0, other: 0 }));
    g.total++;
  }
  const counts = [...groups.values()];
  const total = byKey.size;
  let done = 0;
  let drawnLines = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastPlain = '';

  const summary = (): ProgressSummary => {
    let finished = 0;
    let erred = 0;
    let other = 0;
    for (const g of counts) {
      finished += g.finished;
      erred += g.erred;
      other += g.other;
    }
    return { total, finished, erred, other, elapsedMs: Date.now() - start, prefixes: counts.map((g) => ({ ...g })) };
  };

  const draw = (final: boolean): void => {
    timer = undefined;
    const elapsed = fmtSeconds(Date.now() - start);
    if (tty) {
      const nameWidth = Math.min(24, Math.max(6, ...counts.map((g) => g.prefix.length)));
      const countWidth = String(Math.max(1, ...counts.map((g) => g.total))).length;
      const columns = stream.columns ?? 80;
      const barWidth = Math.max(10, Math.min(options.width ?? 40, columns - nameWidth - 2 * countWidth - 24));
      const lines = counts.map((g) => {
        const ended = g.finished + g.erred + g.other;
        const full = Math.round((barWidth * g.finished) / Math.max(1, g.total));
        const bad = Math.min(barWidth - full, Math.round((barWidth * (g.erred + g.other)) / Math.max(1, g.total)));
        const bar = '#'.repeat(full) + '!'.repeat(bad) + '-'.repeat(barWidth - full - bad);
        const extra = g.erred > 0 ? ` ${g.erred} erred` : '';
        return `${pad(clip(g.prefix, nameWidth), nameWidth)} [${bar}] ${String(ended).padStart(countWidth)}/${g.total}${extra}`;
      });
      lines.push(`${final ? 'done' : 'running'}: ${done}/${total} tasks, ${elapsed}`);
      // Move up over the previous drawing and overwrite it, clearing each line.
      const up = drawnLines > 0 ? `\x1b[${drawnLines}A` : '';
      stream.write(`${up}${lines.map((l) => `\r\x1b[2K${l}`).join('\n')}\n`);
      drawnLines = lines.length;
      return;
    }
    if (final) {
      for (const g of counts) stream.write(`${g.prefix}: ${g.finished}/${g.total} finished${g.erred > 0 ? `, ${g.erred} erred` : ''}${g.other > 0 ? `, ${g.other} cancelled or lost` : ''}\n`);
      stream.write(`done: ${total} tasks in ${elapsed}\n`);
      return;
    }
    const line = `progress: ${counts.map((g) => `${g.prefix} ${g.finished + g.erred + g.other}/${g.total}`).join(', ')}`;
    if (line !== lastPlain) stream.write(`${line} (${elapsed})\n`);
    lastPlain = line;
  };

  const schedule = (): void => {
    if (timer === undefined) {
      timer = setTimeout(() => draw(false), intervalMs);
      timer.unref?.();
    }
  };

  return new Promise<ProgressSummary>((resolve) => {
    const finish = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      draw(true);
      resolve(summary());
    };
    if (total === 0) {
      finish();
      return;
    }
    if (tty) draw(false);
    for (const [key, f] of byKey) {
      const g = groups.get(keySplit(key)) as PrefixProgressCount;
      f.addDoneCallback(() => {
        const s = f.status;
        if (s === 'finished') g.finished++;
        else if (s === 'error') g.erred++;
        else g.other++;
        done++;
        if (done === total) finish();
        else schedule();
      });
    }
  });
}

function collect(x: Nested, out: Map<string, Future>): void {
  if (isFuture(x)) {
    out.set(x.key, x);
  } else if (Array.isArray(x)) {
    for (const y of x as readonly Nested[]) collect(y, out);
  } else if (typeof x === 'object' && x !== null) {
    for (const y of Object.values(x)) collect(y as Nested, out);
  }
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function fmtSeconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
