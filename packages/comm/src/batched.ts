// BatchedSend: coalesces many small stream messages into one array message written every
// `intervalMs` (or at once when the batch grows large). This is the scheduler's hot path, so
// send() only pushes onto an array: there is one timer per batch (not per message), one write
// promise per batch, and no allocation per message beyond the array slot.

import type { Comm } from './comm';
import { CommClosedError } from './errors';

export interface BatchedSendOptions {
  /** Longest a message waits before its batch is written, in ms (default 2). */
  intervalMs?: number;
  /** Write at once when the batch has this many messages (default 10 000). */
  maxBatchMessages?: number;
  /** Write at once when the batch's estimated payload reaches this many bytes (default 1 MiB). */
  maxBatchBytes?: number;
  /**
   * Most messages one write carries (default 500): a longer batch goes out as consecutive writes,
   * back to back and in order, so the peer can start on the first part while this side still
   * encodes the rest (a scheduler handing 5 000 tasks to a worker at once kept it idle until the
   * whole batch had been encoded, sent and decoded).
   */
  maxWriteMessages?: number;
  /** Called once if a write fails (the comm is then aborted and the BatchedSend stopped). */
  onError?: (error: Error) => void;
  name?: string;
}

export class BatchedSend {
  readonly intervalMs: number;
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  private readonly maxWriteMessages: number;
  /** The last write took only part of the buffer: write the rest as soon as it completes. */
  private carry = false;
  private readonly onError: ((error: Error) => void) | undefined;
  private comm: Comm | undefined;
  private buffer: unknown[] = [];
  private bufferBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The write in progress; while it runs, new messages accumulate into the next batch. */
  private writing: Promise<void> | undefined;
  private stopped = false;
  private error: Error | undefined;
  private stoppedResolve: ((error: Error | undefined) => void) | undefined;
  /** Resolves (never rejects) when the BatchedSend stops, with the write error if one stopped it. */
  readonly stoppedPromise: Promise<Error | undefined>;
  /** Messages and batches written so far (for tests and metrics). */
  messagesSent = 0;
  batchesSent = 0;

  constructor(options: BatchedSendOptions = {}) {
    this.intervalMs = options.intervalMs ?? 2;
    this.maxBatchMessages = options.maxBatchMessages ?? 10_000;
    this.maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
    this.maxWriteMessages = Math.max(1, options.maxWriteMessages ?? 500);
    this.onError = options.onError;
    this.stoppedPromise = new Promise((resolve) => (this.stoppedResolve = resolve));
    this.flush = this.flush.bind(this);
  }

  start(comm: Comm): void {
    if (this.comm !== undefined) throw new Error('BatchedSend already started');
    this.comm = comm;
    comm.onClose(() => this.stop(this.error));
    if (this.buffer.length > 0) this.schedule();
  }

  get closed(): boolean {
    return this.stopped;
  }

  /** Number of messages waiting for the next batch. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Queues messages; throws CommClosedError once the comm is closed (as the reference does). */
  send(...msgs: unknown[]): void {
    this.sendAll(msgs);
  }

  /**
   * send() for a list: a scheduler hands one worker 100 000 compute-tasks of a large graph at
   * once, and spreading that many arguments exceeds the stack (RangeError at ~120 000).
   */
  sendAll(msgs: readonly unknown[]): void {
    if (this.stopped || this.comm?.closed === true) {
      throw new CommClosedError(`BatchedSend to ${this.comm?.peerAddress ?? '(not started)'} is closed`, { cause: this.error });
    }
    for (let i = 0; i < msgs.length; i++) {
      const msg = msgs[i];
      this.buffer.push(msg);
      this.bufferBytes += estimateBytes(msg);
    }
    if (this.buffer.length >= this.maxBatchMessages || this.bufferBytes >= this.maxBatchBytes) {
      if (this.writing === undefined) this.flush();
    } else if (this.timer === undefined && this.writing === undefined) {
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.comm === undefined || this.timer !== undefined) return;
    this.timer = setTimeout(this.flush, this.intervalMs);
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const comm = this.comm;
    if (comm === undefined || this.writing !== undefined || this.buffer.length === 0 || this.stopped) return;
    if (comm.closed) {
      this.stop(this.error);
      return;
    }
    let batch: unknown[];
    if (this.buffer.length > this.maxWriteMessages) {
      batch = this.buffer.splice(0, this.maxWriteMessages);
      for (let i = 0; i < batch.length; i++) this.bufferBytes -= estimateBytes(batch[i]);
      this.carry = true;
    } else {
      batch = this.buffer;
      this.buffer = [];
      this.bufferBytes = 0;
      this.carry = false;
    }
    this.writing = comm.write(batch).then(
      () => {
        this.writing = undefined;
        this.messagesSent += batch.length;
        this.batchesSent++;
        if (this.buffer.length === 0 || this.stopped) return;
        // The rest of a split batch goes now; messages that arrived during the write: a large
        // batch goes now, a small one waits its interval.
        if (this.carry || this.buffer.length >= this.maxBatchMessages || this.bufferBytes >= this.maxBatchBytes) this.flush();
        else this.schedule();
      },
      (err: Error) => {
        this.writing = undefined;
        this.error = err;
        comm.abort();
        this.stop(err);
      },
    );
  }

  private stop(error: Error | undefined): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.buffer = [];
    if (error !== undefined) {
      try {
        this.onError?.(error);
      } catch {
        // The error callback must not throw into the write path.
      }
    }
    this.stoppedResolve?.(error);
  }

  /** Writes what is buffered, then closes the comm. */
  async close(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const comm = this.comm;
    if (!this.stopped && comm !== undefined) {
      while (this.writing !== undefined) await this.writing;
      if (!this.stopped && !comm.closed && this.buffer.length > 0) {
        this.flush();
        while (this.writing !== undefined) await this.writing;
      }
    }
    this.stop(undefined);
    await comm?.close();
  }

  /** Drops what is buffered and aborts the comm. */
  abort(): void {
    this.stop(undefined);
    this.comm?.abort();
  }
}

/**
 * Cheap size estimate used to flush big batches early: byte length of binary fields and string
 * length of string fields at the top level of the message (plus a small constant). It never
 * walks nested structures, so it costs a few property reads per message.
 */
function estimateBytes(msg: unknown): number {
  if (typeof msg !== 'object' || msg === null) return typeof msg === 'string' ? msg.length : 8;
  if (ArrayBuffer.isView(msg)) return msg.byteLength;
  let n = 16;
  for (const key in msg) {
    const v = (msg as Record<string, unknown>)[key];
    if (typeof v === 'string') n += v.length;
    else if (typeof v === 'object' && v !== null && ArrayBuffer.isView(v)) n += v.byteLength;
    else n += 8;
  }
  return n;
}
