// State shared by every Comm implementation: the inbox of received messages, pending reads,
// and the closed state with its listeners. Transports only call deliver()/fail()/markClosed().

import type { Comm, Compression, PeerInfo, Refusal } from './comm';
import { CommClosedError } from './errors';

interface PendingRead {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Resolved promise shared by every write that did not have to wait (saves an allocation per write). */
export const RESOLVED: Promise<void> = Promise.resolve();

export abstract class BaseComm implements Comm {
  closed = false;
  compression: Compression = null;
  peerInfo: PeerInfo | undefined = undefined;
  refusal: Refusal | undefined = undefined;

  // Inbox as an array with a moving head: O(1) push/shift without Array#shift's copying.
  private inbox: unknown[] = [];
  private inboxHead = 0;
  private readers: PendingRead[] = [];
  /** Error handed to the next read (e.g. the ProtocolError that broke the connection). */
  private pendingError: Error | undefined;
  private closeError: Error | undefined;
  private closeListeners: Array<(error: Error | undefined) => void> = [];
  private paused = false;

  /** Inbox length above which the transport is paused until reads catch up. */
  protected readonly inboxHighWater = 1024;

  constructor(readonly localAddress: string, readonly peerAddress: string) {}

  abstract write(msg: unknown): Promise<void>;
  abstract close(): Promise<void>;
  abstract abort(): void;

  /** Stop / restart reading from the transport (flow control for slow readers). */
  protected pauseTransport(): void {}
  protected resumeTransport(): void {}

  /** Transports that read a byte stream override this (see ConfigurableComm). */
  get partialMessageBytes(): number {
    return 0;
  }

  setCompression(compression: Compression): void {
    this.compression = compression;
  }

  setPeerInfo(info: PeerInfo): void {
    this.peerInfo = info;
  }

  read(): Promise<unknown> {
    if (this.inboxHead < this.inbox.length) return Promise.resolve(this.shiftInbox());
    if (this.pendingError !== undefined) {
      const error = this.pendingError;
      this.pendingError = undefined;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  onClose(listener: (error: Error | undefined) => void): void {
    if (this.closed) listener(this.closeError);
    else this.closeListeners.push(listener);
  }

  /** A whole message arrived from the peer. */
  protected deliver(msg: unknown): void {
    if (this.closed) return;
    const reader = this.readers.shift();
    if (reader !== undefined) {
      reader.resolve(msg);
      return;
    }
    this.inbox.push(msg);
    if (!this.paused && this.inbox.length - this.inboxHead > this.inboxHighWater) {
      this.paused = true;
      this.pauseTransport();
    }
  }

  /**
   * The peer broke the protocol: the next read rejects with `error`, later reads with
   * CommClosedError, and the transport is torn down. Messages received before stay readable.
   */
  protected fail(error: Error): void {
    if (this.closed) return;
    const reader = this.readers.shift();
    if (reader !== undefined) reader.reject(error);
    else this.pendingError = error;
    this.markClosed(error, true);
    this.abort();
  }

  /**
   * The comm is closed. `keepInbox` lets the reader drain messages that arrived before the peer
   * closed; a local close/abort drops them.
   */
  protected markClosed(error: Error | undefined, keepInbox: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = error;
    if (!keepInbox) {
      this.inbox = [];
      this.inboxHead = 0;
      this.pendingError = undefined;
    }
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) r.reject(this.closedError());
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const l of listeners) {
      try {
        l(error);
      } catch {
        // A close listener's failure must not stop the others or escape into the transport.
      }
    }
  }

  protected closedError(): CommClosedError {
    const why = this.closeError === undefined ? '' : `: ${this.closeError.message}`;
    return new CommClosedError(`comm ${this.localAddress} -> ${this.peerAddress} is closed${why}`, {
      cause: this.closeError,
    });
  }

  private shiftInbox(): unknown {
    const msg = this.inbox[this.inboxHead];
    this.inbox[this.inboxHead++] = undefined;
    if (this.inboxHead === this.inbox.length) {
      this.inbox = [];
      this.inboxHead = 0;
    } else if (this.inboxHead > 1024 && this.inboxHead * 2 > this.inbox.length) {
      this.inbox = this.inbox.slice(this.inboxHead);
      this.inboxHead = 0;
    }
    if (this.paused && this.inbox.length - this.inboxHead <= this.inboxHighWater / 2) {
      this.paused = false;
      this.resumeTransport();
    }
    return msg;
  }
}
