// Event-loop lag of this process: a timer every `intervalMs` measures how late it fires. Keeps the
// last few seconds of samples, so a page or a scrape sees recent lag, not a lifetime average.

export class LagMonitor {
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  /** [time, lag ms] samples, newest last. */
  private samples: Array<[number, number]> = [];

  constructor(
    private readonly intervalMs = 50,
    private readonly windowMs = 5000,
  ) {
    this.schedule();
  }

  private schedule(): void {
    this.expected = performance.now() + this.intervalMs;
    this.timer = setTimeout(() => {
      const now = performance.now();
      this.samples.push([now, Math.max(0, now - this.expected)]);
      while (this.samples.length > 0 && now - (this.samples[0] as [number, number])[0] > this.windowMs) this.samples.shift();
      this.schedule();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Lag in ms over the window: mean, max and 99th percentile. */
  stats(): { mean: number; max: number; p99: number } {
    if (this.samples.length === 0) return { mean: 0, max: 0, p99: 0 };
    const lags = this.samples.map((s) => s[1]).sort((a, b) => a - b);
    const sum = lags.reduce((a, b) => a + b, 0);
    const p99 = lags[Math.min(lags.length - 1, Math.floor(lags.length * 0.99))] as number;
    return { mean: sum / lags.length, max: lags[lags.length - 1] as number, p99 };
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
