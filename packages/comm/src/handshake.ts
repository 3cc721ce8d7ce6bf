// The first message each way on every connection. Both sides write theirs and then read the
// peer's (so neither waits on the other), check the protocol version, and agree compression:
// lz4 when both offer it, except that the default offer does not compress towards a peer on
// this host (see compressesTowards). A listener that refuses a connection (connection limit)
// says so in its handshake and closes.

import { ProtocolError } from '@dd/protocol';
import type { Compression, ConfigurableComm, PeerInfo, Refusal } from './comm';
import { getAddressHost } from './addressing';
import { ConnectionLimitError, TimeoutError, TlsError } from './errors';

export const PROTOCOL_VERSION = 1;
export const DD_VERSION = '0.1.0';
export const DEFAULT_COMPRESSION_OFFER: readonly string[] = ['lz4'];

export interface HandshakeMessage {
  op: 'handshake';
  versions: { protocol: number; dd: string };
  compression: string[];
  /** Set by a listener that will not serve this connection; the reason for the refusal. */
  refused?: string;
  /** Error code of the refusal (DD_ERR_CONNECTION_LIMIT when absent). */
  refusedCode?: string;
}

export function makeHandshake(compression: readonly string[] | undefined, refused?: Refusal): HandshakeMessage {
  const msg: HandshakeMessage = {
    op: 'handshake',
    versions: { protocol: PROTOCOL_VERSION, dd: DD_VERSION },
    compression: [...(compression ?? DEFAULT_COMPRESSION_OFFER)],
  };
  if (refused !== undefined) {
    msg.refused = refused.reason;
    msg.refusedCode = refused.code;
  }
  return msg;
}

/** Validates the peer's handshake; throws ProtocolError (or ConnectionLimitError for a refusal). */
export function checkPeerHandshake(msg: unknown, peerAddress: string): PeerInfo & { refused?: string } {
  const m = msg as Partial<HandshakeMessage> | null;
  if (typeof m !== 'object' || m === null || m.op !== 'handshake' || typeof m.versions !== 'object' || m.versions === null) {
    throw new ProtocolError(`peer ${peerAddress} did not start with a dd handshake (is it a dd endpoint?)`);
  }
  const protocol = m.versions.protocol;
  if (protocol !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `peer ${peerAddress} speaks dd protocol version ${String(protocol)} (dd ${String(m.versions.dd)}), ` +
        `this process speaks version ${PROTOCOL_VERSION} (dd ${DD_VERSION}); upgrade one side`,
    );
  }
  if (typeof m.refused === 'string') {
    const message = `${peerAddress} refused the connection: ${m.refused}`;
    throw m.refusedCode === 'DD_ERR_TLS' ? new TlsError(message) : new ConnectionLimitError(message);
  }
  return {
    protocol,
    dd: typeof m.versions.dd === 'string' ? m.versions.dd : '?',
    compression: Array.isArray(m.compression) ? m.compression.filter((c): c is string => typeof c === 'string') : [],
  };
}

export function agreeCompression(ours: readonly string[] | undefined, theirs: readonly string[]): Compression {
  const offered = ours ?? DEFAULT_COMPRESSION_OFFER;
  return offered.includes('lz4') && theirs.includes('lz4') ? 'lz4' : null;
}

/**
 * Whether this side compresses towards the peer. With the default offer (`ours` undefined), not
 * towards a peer on this host: over loopback, compression costs more than it saves. The
 * receiver must write every byte into fresh memory either way (page faults bound that, ~1.2
 * GB/s here), while the sender's raw write is a kernel copy; lz4 adds the compression on the
 * sender (lz4-napi: ~0.45 GB/s even on one repeated byte) and breaks the receiver's zero-copy
 * path (the decompressed pieces of a split frame must be joined). Measured: a 200 MiB
 * compressible Buffer worker-to-worker, and 100 MiB to the client, were several times faster raw.
 * An explicit offer (e.g. `compression: ['lz4']`) is honoured for every peer.
 */
export function compressesTowards(ours: readonly string[] | undefined, theirs: readonly string[], localAddress: string, peerAddress: string): Compression {
  const agreed = agreeCompression(ours, theirs);
  if (agreed === null || ours !== undefined) return agreed;
  return onThisHost(localAddress, peerAddress) ? null : agreed;
}

function hostOf(address: string): string | undefined {
  try {
    return getAddressHost(address);
  } catch {
    return undefined;
  }
}

function onThisHost(localAddress: string, peerAddress: string): boolean {
  const peer = hostOf(peerAddress);
  if (peer === undefined) return false;
  if (peer === 'localhost' || peer === '::1' || peer === '[::1]' || peer.startsWith('127.') || peer.startsWith('::ffff:127.')) return true;
  return peer === hostOf(localAddress);
}

/**
 * The error for a peer whose first bytes are not a dd prelude (see StreamComm): the usual cause
 * is a wrong address, e.g. a dd client pointed at an HTTP port, or a browser or HTTP health
 * check pointed at a scheduler. Without it the reader only sees the limit error of those bytes
 * read as a frame count ("frame count 3543824036068086856 exceeds the limit of 65536").
 * `connecting`: this side opened the connection (so the peer should have been a dd server).
 */
export function notADdPeerError(peerAddress: string, bytes: Uint8Array, connecting: boolean, cause: unknown): ProtocolError {
  const sent = `it sent ${describeBytes(bytes)}`;
  return connecting
    ? notADdServerError(peerAddress, sent, cause)
    : new ProtocolError(`${peerAddress} did not start with a dd handshake (${sent}): is a client that does not speak dd pointed at this port?`, { cause });
}

/**
 * The connecting side's error for a server that is something else than dd (`what` says what it
 * answered). A ProtocolError, so connect() fails at once instead of retrying until its timeout:
 * asking again will not turn an HTTP server into a dd one.
 */
export function notADdServerError(address: string, what: string, cause?: unknown): ProtocolError {
  return new ProtocolError(`${address} did not answer as a dd server (${what}): is this the right address and port?`, { cause });
}

const PREVIEW_BYTES = 48;

/** The start of `bytes` for an error message: quoted text if it is text (HTTP, ...), else hex. */
function describeBytes(bytes: Uint8Array): string {
  const head = bytes.subarray(0, PREVIEW_BYTES);
  let text = true;
  for (let i = 0; i < head.length && text; i++) {
    const b = head[i]!;
    text = (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d;
  }
  if (text) {
    // The first line is what identifies the protocol ("HTTP/1.1 400 Bad Request", "GET / HTTP/1.1").
    const all = Buffer.from(head).toString('latin1');
    const line = all.split(/\r?\n/, 1)[0]!;
    return JSON.stringify(line.length < all.length || head.length < bytes.length ? `${line}...` : line);
  }
  // (No byte count: `bytes` is what one read returned, not all the peer sent.)
  const hex = Buffer.from(head.subarray(0, 16)).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  return `bytes ${hex}${bytes.byteLength > 16 ? ' ...' : ''}`;
}

/** Reads with a time bound; on timeout the comm is aborted (so the read settles too). */
export function readWithTimeout(comm: ConfigurableComm, timeoutMs: number, what: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Bytes of an incomplete message tell a peer that sent something (garbage, a slow or
      // truncated peer) from one that only opened the connection (port scanner, TCP health check).
      const partial = comm.partialMessageBytes;
      const got = partial > 0 ? ` (${partial} bytes of an incomplete message received)` : '';
      reject(new TimeoutError(`${what}: no reply from ${comm.peerAddress} within ${timeoutMs} ms${got}`));
      comm.abort();
    }, timeoutMs);
    comm.read().then(
      (msg) => {
        clearTimeout(timer);
        resolve(msg);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Runs the handshake on a fresh comm and configures it. Inproc comms (no serialization) still
 * exchange handshakes, so version checks and refusals work the same everywhere.
 */
export async function performHandshake(
  comm: ConfigurableComm,
  options: { compression?: readonly string[] | undefined; timeoutMs: number },
): Promise<PeerInfo> {
  await comm.write(makeHandshake(options.compression));
  const reply = await readWithTimeout(comm, options.timeoutMs, 'handshake');
  const info = checkPeerHandshake(reply, comm.peerAddress);
  comm.setPeerInfo(info);
  comm.setCompression(compressesTowards(options.compression, info.compression, comm.localAddress, comm.peerAddress));
  return info;
}

