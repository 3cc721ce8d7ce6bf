// Throttling of the Server's warnings about peers that are not dd (see Server.logHandshakeError).
// A port scanner or an HTTP health check pointed at a dd port opens a connection every few
// seconds, forever; one warning per connection would bury everything else in the log. The
// throttle keeps one warning per host and window, and the next warning after the window says
// how many were dropped meanwhile.
//
// No timers: the window is checked against timestamps when the next warning comes, so there is
// nothing to keep the process alive or to clean up. Memory is bounded by `maxHosts`.

export const DEFAULT_WARNING_WINDOW_MS = 60_000;
export const DEFAULT_WARNING_MAX_HOSTS = 1024;

export interface WarningThrottleOptions {
  /** How long after a logged warning further ones from the same host are only counted. */
  windowMs?: number;
  /** Hosts remembered at most; beyond it the one warned about longest ago is forgotten. */
  maxHosts?: number;
  /** Milliseconds now (for tests); Date.now by default. */
  now?: () => number;
}

/** What to do with one warning. */
export type WarningDecision =
  | { log: false }
  /** `suppressed` warnings from this host were dropped in the `sinceMs` since the last one logged. */
  | { log: true; suppressed: number; sinceMs: number };

interface HostWindow {
  /** When the last warning from this host was logged. */
  loggedAt: number;
  /** Warnings from this host dropped since then. */
  suppressed: number;
}

export class WarningThrottle {
  private readonly windowMs: number;
  private readonly maxHosts: number;
  private readonly now: () => number;
  /** In the order of their last logged warning, oldest first (a Map keeps insertion order). */
  private readonly hosts = new Map<string, HostWindow>();

  constructor(options: WarningThrottleOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_WARNING_WINDOW_MS;
    this.maxHosts = options.maxHosts ?? DEFAULT_WARNING_MAX_HOSTS;
    // A closure, not Date.now itself: a test that replaces Date.now must be seen.
    this.now = options.now ?? (() => Date.now());
  }

  /** Called once per warning about `host`: log it, or count it as suppressed. */
  decide(host: string): WarningDecision {
    const now = this.now();
    const entry = this.hosts.get(host);
    // A clock that went backwards (elapsed < 0) ends the window too, rather than silencing the
    // host until the clock catches up.
    const elapsed = entry === undefined ? 0 : now - entry.loggedAt;
    if (entry !== undefined && elapsed >= 0 && elapsed < this.windowMs) {
      entry.suppressed++;
      return { log: false };
    }
    this.remember(host, now);
    return { log: true, suppressed: entry?.suppressed ?? 0, sinceMs: elapsed };
  }

  /** Hosts currently remembered (for tests). */
  get size(): number {
    return this.hosts.size;
  }

  private remember(host: string, now: number): void {
    // Deleted and set again, so the host moves to the end of the Map's order.
    this.hosts.delete(host);
    if (this.hosts.size >= this.maxHosts) {
      const oldest = this.hosts.keys().next();
      if (oldest.done !== true) this.hosts.delete(oldest.value);
    }
    this.hosts.set(host, { loggedAt: now, suppressed: 0 });
  }
}
