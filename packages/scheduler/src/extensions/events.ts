// Structured events (the reference's log_event / get_events): per-topic logs of
// [time in seconds, message], bounded per topic. Clients log over their stream (`log-event`),
// anyone may read them (`get-events`). The scheduler itself logs workers joining and leaving
// (topics "all" and the worker's address, messages { action, worker }).

import type { SchedulerEvent } from '../events';
import type { ExtensionHost, ExtensionMsg, SchedulerExtension } from './extension';

export type EventRecord = [time: number, msg: unknown];

export class EventsExtension implements SchedulerExtension {
  readonly name = 'events';
  private readonly topics = new Map<string, EventRecord[]>();

  constructor(
    private readonly host: ExtensionHost,
    /** Events kept per topic; the oldest go first. */
    private readonly maxPerTopic = 100_000,
  ) {
    host.addObserver({ onStimuli: (events) => this.observe(events) });
  }

  log(topic: string | readonly string[], msg: unknown): void {
    const time = this.host.now() / 1000;
    for (const t of typeof topic === 'string' ? [topic] : topic) {
      let list = this.topics.get(t);
      if (list === undefined) this.topics.set(t, (list = []));
      list.push([time, msg]);
      if (list.length > this.maxPerTopic) list.splice(0, list.length - this.maxPerTopic);
    }
  }

  private checkedLog(m: ExtensionMsg, op: string): void {
    const topic = m['topic'];
    const ok = typeof topic === 'string' || (Array.isArray(topic) && topic.length > 0 && topic.every((t) => typeof t === 'string'));
    if (!ok) throw new TypeError(`${op}: field "topic" must be a string or an array of strings`);
    this.log(topic as string | string[], m['msg'] ?? null);
  }

  readonly handlers = {
    'log-event': (m: ExtensionMsg) => {
      this.checkedLog(m, 'log-event');
      return null;
    },
    'get-events': (m: ExtensionMsg) => {
      const topic = m['topic'];
      if (topic === undefined || topic === null) return Object.fromEntries([...this.topics].map(([t, l]) => [t, [...l]]));
      if (typeof topic !== 'string') throw new TypeError('get-events: field "topic" must be a string');
      return [...(this.topics.get(topic) ?? [])];
    },
  };

  readonly clientStreamHandlers = {
    'log-event': (m: ExtensionMsg) => this.checkedLog(m, 'log-event'),
  };

  private observe(events: readonly SchedulerEvent[]): void {
    for (const ev of events) {
      if (ev.kind === 'add-worker') this.log(['all', ev.address], { action: 'add-worker', worker: ev.address });
      else if (ev.kind === 'remove-worker') this.log(['all', ev.address], { action: 'remove-worker', worker: ev.address });
    }
  }
}
