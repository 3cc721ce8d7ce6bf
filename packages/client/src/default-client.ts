// The default client, as dask's: the most recently connected client that is still open. Used
// by `Delayed#compute()` / `persist()` when no client is given.

import type { Client } from './client';
import { ClientClosedError } from './errors';

// Open clients, oldest first; closed ones are removed, so the previous one takes over.
const clients: Client[] = [];

/** @internal Client.connect registers each new client. */
export function registerClient(client: Client): void {
  clients.push(client);
}

/** @internal Client.close forgets the client. */
export function unregisterClient(client: Client): void {
  const i = clients.lastIndexOf(client);
  if (i >= 0) clients.splice(i, 1);
}

/** The most recently connected client that is still running; throws if there is none. */
export function defaultClient(): Client {
  for (let i = clients.length - 1; i >= 0; i--) {
    const c = clients[i]!;
    if (c.status === 'running') return c;
  }
  throw new ClientClosedError('no client is connected: call Client.connect() first, or pass { client }');
}
