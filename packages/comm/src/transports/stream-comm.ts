// A Comm over a byte stream (net.Socket for tcp://, tls.TLSSocket for tls://). Reads feed an
// incremental FrameDecoder; writes send the prelude and the frames with one gathered write.

import type { Socket } from 'node:net';
import { DEFAULT_FRAME_LIMITS, FrameDecoder, ProtocolError, encodePrelude, packFramesInto, packedSize, type DecodeOptions, type FrameLimits } from '@dd/protocol';
import { BaseComm, RESOLVED } from '../base-comm';
import { decodeFrames, encodeFrames } from '../codec';
import { notADdPeerError } from '../handshake';

/**
 * Messages below this size are packed into one buffer (one small copy, one write call), which
 * is cheaper than a gathered write of several tiny chunks; larger ones are written frame by
 * frame under cork() so big payloads are never copied.
 */
const PACK_BELOW_BYTES = 64 * 1024;

/** How long a graceful close waits for the peer to finish before destroying the socket. */
const CLOSE_GRACE_MS = 2000;

/** Size of the slabs DirectReads reads small data into (Node's own read size). */
const SLAB_BYTES = 64 * 1024;
/** A slab with less room than this left is replaced, so reads stay large. */
const SLAB_MIN_ROOM = 8 * 1024;

/**
 * The `onread` option of an outgoing net socket (net.connect), made before its StreamComm
 * exists: the socket then reads into memory we choose instead of a fresh 64 KiB Buffer per read
 * emitted as 'data'. While a large message is being reassembled, that memory is the rest of its
 * reassembly buffer (FrameDecoder.directTarget), so the kernel copies socket bytes straight into
 * the value's final memory and each read takes all the socket holds (a 100 MiB gather: ~50 reads
 * instead of ~1600 'data' events plus a userland copy of every byte). Otherwise reads go into
 * a 64 KiB slab, handed out piecewise and never reused (decoded values may be views of it).
 * Accepted sockets cannot take this option, so they stay on 'data' events.
 */
export class DirectReads {
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;
  /** The memory handed to the socket for its next read. */
  private target: Uint8Array | undefined;
  private direct = false;
  private comm: StreamComm | undefined;
  private early: Buffer[] = [];

  readonly onread = {
    buffer: (): Uint8Array => this.next(),
    // true: keep reading (flow control is the comm's pause()/resume() of the socket).
    callback: (nread: number, buf: Uint8Array): boolean => {
      this.read(nread, buf);
      return true;
    },
  };

  /** Called by the StreamComm that owns the socket; delivers what arrived before. */
  attach(comm: StreamComm): void {
    this.comm = comm;
    const early = this.early;
    this.early = [];
    for (const chunk of early) comm.onChunk(chunk);
  }

  private next(): Uint8Array {
    const direct = this.comm?.directTarget();
    if (direct !== undefined && direct.byteLength > 0) {
      this.direct = true;
      return (this.target = direct);
    }
    this.direct = false;
    if (this.slab.byteLength - this.used < SLAB_MIN_ROOM) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    return (this.target = this.slab.subarray(this.used));
  }

  private read(nread: number, buf: Uint8Array): void {
    if (this.direct && buf === this.target) {
      this.comm!.onDirect(nread);
      return;
    }
    const chunk = this.slab.subarray(this.used, this.used + nread);
    this.used += nread;
    if (this.comm === undefined) this.early.push(chunk);
    else this.comm.onChunk(chunk);
  }
}

export class StreamComm extends BaseComm {
  private readonly decoder: FrameDecoder;
  private readonly decodeOptions: DecodeOptions | undefined;
  private drainWait: Promise<void> | undefined;
  private socketError: Error | undefined;

  /**
   * `connecting`: this side opened the connection (only changes the wording of the error for a
   * peer that does not speak dd at all, see notDd).
   */
  constructor(
    private readonly socket: Socket,
    localAddress: string,
    peerAddress: string,
    limits: Partial<FrameLimits> | undefined,
    private readonly connecting: boolean,
    reads?: DirectReads,
  ) {
    super(localAddress, peerAddress);
    this.decoder = new FrameDecoder(limits);
    this.decodeOptions = limits === undefined ? undefined : { ...limits };
    socket.setNoDelay(true);
    if (reads !== undefined) reads.attach(this);
    else socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    socket.on('error', (err) => {
      this.socketError ??= err;
    });
    socket.on('close', () => this.onSocketClose());
  }

  override get partialMessageBytes(): number {
    return this.decoder.partialMessageBytes;
  }

  /** @internal DirectReads: where the socket may read next (see FrameDecoder.directTarget). */
  directTarget(): Uint8Array | undefined {
    return this.decoder.directTarget;
  }

  /** @internal DirectReads: `n` bytes were read into the last directTarget. */
  onDirect(n: number): void {
    let messages: Uint8Array[][];
    try {
      messages = this.decoder.pushDirect(n);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.onMessages(messages);
  }

  /** @internal Bytes from the socket ('data' event or DirectReads). */
  onChunk(chunk: Buffer): void {
    let messages: Uint8Array[][];
    try {
      // The Buffer itself: protocol copies misaligned typed-array payloads even out of a Buffer.
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.fail(this.peerInfo === undefined ? this.notDd(err as Error, chunk) : (err as Error));
      return;
    }
    this.onMessages(messages);
  }

  private onMessages(messages: Uint8Array[][]): void {
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

  /**
   * Before the handshake (only on this error path, so the message path pays nothing): bytes
   * that cannot even start a dd message mean the peer does not speak dd, and the reader gets a
   * ProtocolError that says so and quotes them (cause: the decoder's error). A plausible frame
   * count keeps the decoder's own error: a dd peer can break this side's limits. (No message
   * came out of this chunk, as push() threw; one from an earlier chunk would have been the
   * handshake, and peerInfo is set before the next chunk is read.)
   */
  private notDd(error: Error, chunk: Buffer): Error {
    if (chunk.byteLength < 8) return error;
    const maxFrames = this.decodeOptions?.maxFrames ?? DEFAULT_FRAME_LIMITS.maxFrames;
    if (chunk.readUInt32LE(4) === 0 && chunk.readUInt32LE(0) <= maxFrames) return error;
    return notADdPeerError(this.peerAddress, chunk, this.connecting, error);
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

