// Published datasets (the reference's "Publish Datasets"): named values, usually holding
// Futures' keys, that any client can look up. The data stays alive after the publishing client
// leaves: each publication's keys are wanted by a pseudo-client of its own (`holder`, chosen by
// the publishing client, `published-...`), which the client pins on its stream right after the
// update-graph that made the keys, and which this extension releases (remove-client) when the
// name is unpublished or replaced. A pin that arrives after its holder was released (a race
// between the client's stream and its rpc) is released again when observed.

import type { SchedulerEvent } from '../events';
import { ExtensionConflictError, ExtensionKeyError, str, strList, type ExtensionHost, type ExtensionMsg, type SchedulerExtension } from './extension';

interface Dataset {
  keys: string[];
  data: unknown;
  holder: string;
}

export const DATASET_HOLDER_PREFIX = 'published-';

export class DatasetsExtension implements SchedulerExtension {
  readonly name = 'datasets';
  private readonly datasets = new Map<string, Dataset>();
  /** Holders released already (bounded): a late pin from one of them is released again. */
  private readonly retired = new Set<string>();

  constructor(private readonly host: ExtensionHost) {
    host.addObserver({ onStimuli: (events) => this.observe(events) });
  }

  readonly handlers = {
    'publish-dataset': (m: ExtensionMsg) => this.publish(m),
    'unpublish-dataset': (m: ExtensionMsg) => this.unpublish(str(m, 'name', 'unpublish-dataset')),
    'list-datasets': () => [...this.datasets.keys()].sort(),
    'get-dataset': (m: ExtensionMsg) => {
      const name = str(m, 'name', 'get-dataset');
      const d = this.datasets.get(name);
      if (d === undefined) throw new ExtensionKeyError(`dataset ${JSON.stringify(name)} is not published`);
      return { keys: d.keys, data: d.data };
    },
  };

  private publish(m: ExtensionMsg): null {
    const op = 'publish-dataset';
    const name = str(m, 'name', op);
    const keys = strList(m, 'keys', op);
    const holder = str(m, 'holder', op);
    if (!holder.startsWith(DATASET_HOLDER_PREFIX)) throw new TypeError(`${op}: holder must start with "${DATASET_HOLDER_PREFIX}"`);
    const old = this.datasets.get(name);
    if (old !== undefined && m['override'] !== true) {
      if (holder !== old.holder) this.retire(holder);
      throw new ExtensionConflictError(`dataset ${JSON.stringify(name)} is already published (unpublish it first, or publish with override)`);
    }
    if (old !== undefined && old.holder !== holder) this.retire(old.holder);
    this.datasets.set(name, { keys, data: m['data'] ?? null, holder });
    // Pin what the scheduler knows already (the client's stream pins the rest, in order).
    if (keys.length > 0) this.host.feed({ kind: 'client-desires-keys', client: holder, keys, stimulusId: this.host.sid('publish-dataset') });
    return null;
  }

  private unpublish(name: string): null {
    const d = this.datasets.get(name);
    if (d === undefined) throw new ExtensionKeyError(`dataset ${JSON.stringify(name)} is not published`);
    this.datasets.delete(name);
    this.retire(d.holder);
    return null;
  }

  private retire(holder: string): void {
    this.retired.add(holder);
    if (this.retired.size > 10_000) this.retired.delete(this.retired.values().next().value as string);
    this.host.feed({ kind: 'remove-client', client: holder, stimulusId: this.host.sid('unpublish-dataset') });
  }

  private observe(events: readonly SchedulerEvent[]): void {
    for (const ev of events) {
      if (ev.kind === 'client-desires-keys' && this.retired.has(ev.client)) {
        const client = ev.client;
        // Not from inside the observer call: the scheduler is still dispatching this batch.
        queueMicrotask(() => this.host.feed({ kind: 'remove-client', client, stimulusId: this.host.sid('unpublish-dataset') }));
      }
    }
  }
}
