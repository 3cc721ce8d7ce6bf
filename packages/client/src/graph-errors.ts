// Errors for task graphs (client.get, delayed): raised on the client before anything is sent.

import { DdError, type Key } from '@dd/protocol';

/** A graph (or the keys asked of it) is malformed: a missing key, a bad task, a bad key. */
export class InvalidGraphError extends DdError {
  override readonly code: string = 'DD_ERR_INVALID_GRAPH';
  /** The key at fault (wire form), when there is one. */
  readonly key: Key | undefined;
  constructor(message: string, key?: Key) {
    super(message);
    this.key = key;
  }
}

/** The graph has a cycle; `cycle` lists its keys, the first repeated at the end. */
export class GraphCycleError extends InvalidGraphError {
  override readonly code: string = 'DD_ERR_GRAPH_CYCLE';
  constructor(readonly cycle: Key[]) {
    super(`the graph has a cycle: ${cycle.join(' -> ')}`, cycle[0]);
  }
}
