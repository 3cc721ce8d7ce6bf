// Messages between the thread pool (main thread) and its executor threads.

import type { Key, WireError, WireRunSpec } from '@dd/protocol';

export interface ThreadRequest {
  id: number;
  spec: WireRunSpec;
  deps: Record<Key, unknown>;
  /** Dependencies that were Node Buffers (structured clone delivers Uint8Arrays). */
  bufferKeys?: Key[];
}

export type ThreadResponse =
  | { id: number; ok: true; value: unknown; nbytes: number; type: string; start: number; stop: number; isBuffer: boolean }
  | { id: number; ok: false; error: WireError; start: number; stop: number };
