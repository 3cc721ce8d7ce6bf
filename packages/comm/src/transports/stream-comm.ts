// A Comm over a byte stream (net.Socket for tcp://, tls.TLSSocket for tls://). Reads feed an
// incremental FrameDecoder; writes send the prelude and the frames with one gathered write.

import type { Socket } from 'node:net';
import { FrameDecoder, ProtocolError, encodePrelude, packFramesInto, packedSize, type DecodeOptions, type FrameLimits } from '@dd/protocol';
import { BaseComm, RESOLVED } from '../base-comm';
import { decodeFrames, encodeFrames } from '../codec';

/**
 * Messages below this size are packed into one buffer (one small copy, one write call), which
 * is cheaper than a gathered write of several tiny chunks; larger ones are written frame by
 * frame under cork() so big payloads are never copied.
 */
const PACK_BELOW_BYTES = 64 * 1024;

/** How long a graceful close waits for the peer to finish before destroying the socket. */
const CLOSE_GRACE_MS = 2000;

export class StreamComm extends BaseComm {
  private readonly decoder: FrameDecoder;
  private readonly decodeOptions: DecodeOptions | undefined;
  private drainWait: Promise<void> | undefined;
  private socketError: Error | undefined;

  constructor(
    private readonly socket: Socket,
    localAddress: string,
    peerAddress: string,
    limits: Partial<FrameLimits> | undefined,
  ) {
    super(localAddress, peerAddress);
    this.decoder = new FrameDecoder(limits);
    this.decodeOptions = limits === undefined ? undefined : { ...limits };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.socketError ??= err;
    });
    socket.on('close', () => this.onSocketClose());
  }

  private onData(chunk: Buffer): void {
    let messages: Uint8Array[][];
    try {
      // The Buffer itself: protocol copies misaligned typed-array payloads even out of a Buffer.
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    for (let i = 0; i < messages.length; i++) {
      let msg: unknown;
      try {
        msg = decodeFrames(messages[i]!, this.decodeOptions);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      this.deliver(msg);
      if (this.closed) return;
    }
    // Bad bytes after whole messages in this chunk: those were delivered, now the stream is dead.
    if (this.decoder.error !== undefined) this.fail(this.decoder.error);
  }

  private onSocketClose(): void {
    const partial = this.decoder.partialMessageBytes;
    if (this.socketError === undefined && partial > 0 && !this.closed) {
      // The reader gets a ProtocolError (not just "closed"): the peer broke off mid-message.
      this.fail(new ProtocolError(
        `connection from ${this.peerAddress} closed in the middle of a message (${partial} bytes of it received)`,
      ));
      return;
    }
    this.markClosed(this.socketError, true);
  }

  protected override pauseTransport(): void {
    this.socket.pause();
  }

  protected override resumeTransport(): void {
    this.socket.resume();
  }

  write(msg: unknown): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    let frames: Uint8Array[];
    try {
      frames = encodeFrames(msg, this.compression);
    } catch (err) {
      return Promise.reject(err);
    }
    const socket = this.socket;
    let flushed: boolean;
    const size = packedSize(frames);
    if (size < PACK_BELOW_BYTES) {
      // One pooled Buffer, one write call; a Buffer, so the socket need not wrap a Uint8Array.
      const out = Buffer.allocUnsafe(size);
      packFramesInto(frames, out, 0);
      flushed = socket.write(out);
    } else {
      socket.cork();
      socket.write(encodePrelude(frames));
      for (let i = 0; i < frames.length; i++) socket.write(frames[i]!);
      // uncork() performs one writev of everything written while corked.
      socket.uncork();
      flushed = !socket.writableNeedDrain;
    }
    return flushed ? RESOLVED : this.waitForDrain();
  }

  private waitForDrain(): Promise<void> {
    this.drainWait ??= new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        this.drainWait = undefined;
      };
      const onDrain = (): void => {
        done();
        resolve();
      };
      const onClose = (): void => {
        done();
        reject(this.closedError());
      };
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
    return this.drainWait;
  }

  close(): Promise<void> {
    if (this.closed) return RESOLVED;
    this.markClosed(undefined, false);
    const socket = this.socket;
    if (socket.destroyed) return RESOLVED;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      // end() flushes what is buffered, then sends FIN; the peer's FIN completes the close.
      socket.end();
    });
  }

  abort(): void {
    this.markClosed(undefined, false);
    this.socket.destroy();
  }
}

