// Observers of a Scheduler: read-only listeners (the dashboard, metrics exporters, diagnostics)
// told about every batch of stimuli once the state machine has handled it. An observer reads the
// events (task-finished carries the worker's startstops, add-keys the bytes a worker fetched
// from peers, ...) and may read `scheduler.state`, but never changes anything: the scheduler
// does not depend on what observers do, and an observer that throws is logged and kept.

import type { Logger } from '@dd/comm';
import type { SchedulerEvent } from './events';

export interface SchedulerObserver {
  /** A batch of events was handled (the state already reflects them). Keep it cheap: it runs on the scheduler's loop. */
  onStimuli?(events: readonly SchedulerEvent[]): void;
  /** The scheduler is closing. */
  onClose?(): void;
}

export class SchedulerObservers {
  private list: SchedulerObserver[] = [];

  constructor(private readonly logger: Logger) {}

  get size(): number {
    return this.list.length;
  }

  /** Register an observer; returns a function that removes it. */
  add(observer: SchedulerObserver): () => void {
    this.list = [...this.list, observer];
    return () => {
      this.list = this.list.filter((o) => o !== observer);
    };
  }

  stimuli(events: readonly SchedulerEvent[]): void {
    for (const o of this.list) {
      try {
        o.onStimuli?.(events);
      } catch (err) {
        this.logger.error('scheduler observer failed', err);
      }
    }
  }

  close(): void {
    const list = this.list;
    this.list = [];
    for (const o of list) {
      try {
        o.onClose?.();
      } catch (err) {
        this.logger.error('scheduler observer failed on close', err);
      }
    }
  }
}
