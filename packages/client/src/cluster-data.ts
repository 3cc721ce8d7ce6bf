// Client side of the scheduler's datasets, metadata and events extensions
// (packages/scheduler/src/extensions).
//
// Datasets: `publishDataset({ name: value })` stores `value` on the scheduler with each Future
// in it replaced by a key reference; the keys are wanted by a pseudo-client of the publication
// (`published-<name>-<token>`) pinned on this client's stream right after the update-graph that
// made them, so the data outlives this client. `getDataset(name)` gives the value back with a
// new Future (of the calling client) for each key. A dataset that is a single Future resolves to
// its value: a Promise adopts a thenable, so no async method resolves to a bare Future.

import { substituteKeyRefs, type Key } from '@dd/protocol';
import type { Client } from './client';
import { randomToken } from './keys';
import { replaceFutures } from './structure';
import { checkEventMessage, checkEventTopic } from '@dd/worker';

export interface PublishOptions {
  /** Replace a dataset of the same name (default false: publishing an existing name fails). */
  override?: boolean;
}

export async function publishDataset(client: Client, datasets: Record<string, unknown>, options: PublishOptions = {}): Promise<void> {
  if (typeof datasets !== 'object' || datasets === null || Array.isArray(datasets)) {
    throw new TypeError('publishDataset({ name: value, ... }): expected an object of named values');
  }
  for (const [name, value] of Object.entries(datasets)) {
    const keys: Key[] = [];
    const data = replaceFutures(value, (f) => {
      if (f.client !== client) throw new TypeError(`publishDataset: future ${f.key} belongs to another client`);
      if (f.released) throw new TypeError(`publishDataset: future ${f.key} was released`);
      if (!keys.includes(f.key)) keys.push(f.key);
    });
    const holder = `published-${name}-${randomToken()}`;
    // On the stream, after the update-graph that defined the keys: the pin cannot overtake it.
    if (keys.length > 0) client._sendStream({ op: 'client-desires-keys', client: holder, keys, stimulusId: `publish-${holder}` });
    await client._rpc('publish-dataset', { name, keys, data, holder, override: options.override === true });
  }
}

export async function unpublishDataset(client: Client, name: string): Promise<void> {
  await client._rpc('unpublish-dataset', { name });
}

export async function listDatasets(client: Client): Promise<string[]> {
  return await client._rpc<string[]>('list-datasets', {});
}

export async function getDataset(client: Client, name: string): Promise<unknown> {
  const { data } = await client._rpc<{ keys: Key[]; data: unknown }>('get-dataset', { name });
  return substituteKeyRefs(data, (key) => client.futureOf(key));
}

/**
 * `client.datasets`: the published datasets as an async mapping (the reference's
 * `client.datasets`), shared by every client of the scheduler. Backed by publishDataset,
 * getDataset, unpublishDataset and listDatasets; every call asks the scheduler (nothing cached).
 *
 * ```ts
 * await client.datasets.set('answer', future);    // publishes, replacing a dataset of that name
 * await client.datasets.get('answer');            // as getDataset: rejects if not published
 * await client.datasets.has('answer');            // true
 * for await (const name of client.datasets) ...   // the names, sorted
 * await client.datasets.delete('answer');         // as unpublishDataset: rejects if not published
 * ```
 */
export class Datasets implements AsyncIterable<string> {
  readonly #client: Client;

  constructor(client: Client) {
    this.#client = client;
  }

  /** The dataset `name` (as getDataset: new Futures of this client; one Future alone resolves to its value). Rejects if it is not published. */
  async get<T = unknown>(name: string): Promise<T> {
    return (await getDataset(this.#client, checkName(name, 'get'))) as T;
  }

  /** Publishes `value` as `name`, replacing a dataset of that name (like Map.set; publishDataset refuses unless `override`). */
  async set(name: string, value: unknown): Promise<void> {
    await publishDataset(this.#client, { [checkName(name, 'set')]: value }, { override: true });
  }

  /** Unpublishes `name` (its data is freed when nobody else wants it). Rejects if it is not published. */
  async delete(name: string): Promise<void> {
    await unpublishDataset(this.#client, checkName(name, 'delete'));
  }

  async has(name: string): Promise<boolean> {
    return (await listDatasets(this.#client)).includes(checkName(name, 'has'));
  }

  /** The names of the published datasets, sorted. */
  async keys(): Promise<string[]> {
    return await listDatasets(this.#client);
  }

  /** Alias of keys() (the reference's list_datasets). */
  async list(): Promise<string[]> {
    return await listDatasets(this.#client);
  }

  /** The names published when iteration starts (one listing). */
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    yield* await listDatasets(this.#client);
  }
}

function checkName(name: unknown, method: string): string {
  if (typeof name !== 'string') throw new TypeError(`datasets.${method}(name): the name must be a string, got ${typeof name}`);
  return name;
}

/** Stores `value` at the key path (a string is a path of one key). */
export async function setMetadata(client: Client, path: string | readonly string[], value: unknown): Promise<void> {
  await client._rpc('set-metadata', { keys: typeof path === 'string' ? [path] : [...path], value });
}

/** The value at the key path; `defaultValue` when there is none (else it rejects). */
export async function getMetadata(client: Client, path: string | readonly string[], ...defaultValue: [] | [unknown]): Promise<unknown> {
  const args: Record<string, unknown> = { keys: typeof path === 'string' ? [path] : [...path] };
  if (defaultValue.length > 0) args['default'] = defaultValue[0];
  return await client._rpc('get-metadata', args);
}

/** Logs a structured event under one topic or several; sent on the stream, returns at once. */
export function logEvent(client: Client, topic: string | readonly string[], msg: unknown): void {
  // Checked here, in the caller: a message the encoder refuses would fail the whole batch on the
  // client's stream, and the connection with it (the same checks as getWorker().logEvent).
  client._sendStream({ op: 'log-event', topic: checkEventTopic(topic), msg: checkEventMessage(msg) });
}

/** `[timeInSeconds, msg][]` of a topic, or `{ [topic]: [...] }` for every topic. */
export async function getEvents(client: Client, topic?: string): Promise<unknown> {
  return await client._rpc('get-events', topic === undefined ? {} : { topic });
}
