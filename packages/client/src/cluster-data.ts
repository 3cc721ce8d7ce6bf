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
  if (typeof topic !== 'string' && !(Array.isArray(topic) && topic.length > 0 && topic.every((t) => typeof t === 'string'))) {
    throw new TypeError('logEvent(topic, msg): topic must be a string or a non-empty array of strings');
  }
  client._sendStream({ op: 'log-event', topic: typeof topic === 'string' ? topic : [...topic], msg });
}

/** `[timeInSeconds, msg][]` of a topic, or `{ [topic]: [...] }` for every topic. */
export async function getEvents(client: Client, topic?: string): Promise<unknown> {
  return await client._rpc('get-events', topic === undefined ? {} : { topic });
}
