// A Comm over a byte stream (net.Socket for tcp://, tls.TLSSocket for tls://). Reads feed an
// incremental FrameDecoder; writes send the prelude and the frames with one gathered write.

import type { Socket } from 'node:net';
import { FrameDecoder, ProtocolError, encodePrelude, preludeSize, type DecodeOptions, type FrameLimits } from '@dd/protocol';
import { BaseComm, RESOLVED } from '../base-comm';
import { decodeFrames, encodeFrames, framesByteLength } from '../codec';

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
  /** Bytes received that are not yet part of a whole message (the decoder keeps its prelude state privately). */
  private partialBytes = 0;

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
    this.partialBytes += chunk.byteLength;
    try {
      // A plain Uint8Array view, not a Buffer: protocol code may rely on Uint8Array semantics
      // (Buffer#slice does not copy), and it is runtime-neutral by design.
      messages = this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    for (let i = 0; i < messages.length; i++) {
      this.partialBytes -= preludeSize(messages[i]!.length) + framesByteLength(messages[i]!);
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
  }

  private onSocketClose(): void {
    if (this.socketError === undefined && this.partialBytes > 0 && !this.closed) {
      // The reader gets a ProtocolError (not just "closed"): the peer broke off mid-message.
      this.fail(new ProtocolError(
        `connection from ${this.peerAddress} closed in the middle of a message (${this.partialBytes} bytes of it received)`,
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
    const bytes = framesByteLength(frames);
    if (bytes < PACK_BELOW_BYTES) {
      flushed = socket.write(packSmall(frames, bytes));
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


/**
 * The wire format of protocol's packFrames (u64 count, u64 lengths, frames; little-endian),
 * written straight into one Buffer. This is the rpc hot path: it avoids BigInt arithmetic and
 * a second allocation, and hands the socket a Buffer (no Uint8Array-to-Buffer conversion).
 * Lengths here are < 2^32, so each u64 is written as two u32 halves.
 */
function packSmall(frames: readonly Uint8Array[], frameBytes: number): Buffer {
  const n = frames.length;
  const out = Buffer.allocUnsafe(8 * (n + 1) + frameBytes);
  out.writeUInt32LE(n, 0);
  out.writeUInt32LE(0, 4);
  let offset = 8;
  for (let i = 0; i < n; i++, offset += 8) {
    out.writeUInt32LE(frames[i]!.byteLength, offset);
    out.writeUInt32LE(0, offset + 4);
  }
  for (let i = 0; i < n; i++) {
    const f = frames[i]!;
    out.set(f, offset);
    offset += f.byteLength;
  }
  return out;
}
