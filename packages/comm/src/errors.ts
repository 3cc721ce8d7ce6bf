// Errors raised by the transport layer. Each failure is its own class with a stable `code`
// (built on @dd/protocol's DdError, so `instanceof` works across realms). Wire-format errors
// (ProtocolError and its subclasses) live in @dd/protocol and are re-exported here.

import { DdError, type DdErrorOptions, type WireError } from '@dd/protocol';

export { DdError, ProtocolError, FrameLimitError, DeserializationError, SerializationError } from '@dd/protocol';

/** The comm is closed (locally, by the peer, or because the connection broke). */
export class CommClosedError extends DdError {
  override readonly code: string = 'DD_ERR_COMM_CLOSED';
}

/** An operation (connect, handshake, rpc call) did not finish within its time bound. */
export class TimeoutError extends DdError {
  override readonly code: string = 'DD_ERR_TIMEOUT';
}

/** An address is malformed or names a scheme no backend is registered for. */
export class AddressError extends DdError {
  override readonly code: string = 'DD_ERR_ADDRESS';
}

/** The server refused the connection because it already serves `connectionLimit` comms. */
export class ConnectionLimitError extends DdError {
  override readonly code: string = 'DD_ERR_CONNECTION_LIMIT';
}

/** TLS negotiation failed (bad or missing certificate, untrusted CA, ...). Never retried. */
export class TlsError extends DdError {
  override readonly code: string = 'DD_ERR_TLS';
}

/** A request named an operation the server has no handler for. */
export class UnknownOpError extends DdError {
  override readonly code: string = 'DD_ERR_UNKNOWN_OP';
  constructor(readonly op: string, readonly knownOps: readonly string[], options?: DdErrorOptions) {
    super(`unknown operation ${JSON.stringify(op)}; known operations: ${knownOps.join(', ') || '(none)'}`, options);
  }
}

/** A request was not an object with a string `op` field. */
export class BadRequestError extends DdError {
  override readonly code: string = 'DD_ERR_BAD_REQUEST';
}

/** The error a remote handler threw, as received in an error reply (protocol's shape). */
export type { WireError } from '@dd/protocol';

/**
 * A remote handler failed. `remoteName`, `remoteMessage`, `remoteStack` and `remoteCode` are the
 * remote error's own fields; `code` stays DD_ERR_REMOTE so callers can tell "the peer said no"
 * from local failures.
 */
export class RemoteError extends DdError {
  override readonly code: string = 'DD_ERR_REMOTE';
  readonly remoteName: string;
  readonly remoteMessage: string;
  readonly remoteStack: string | undefined;
  readonly remoteCode: string | undefined;
  /** Extra detail the remote side attached (e.g. KilledWorker's task and worker). */
  readonly data: Record<string, unknown> | undefined;
  /** The peer that raised it, when known. */
  readonly address: string | undefined;
  /** The task that raised it, for task errors. */
  readonly key: string | undefined;

  constructor(wire: WireError, context: { address?: string; key?: string } = {}) {
    super(`${wire.name}: ${wire.message}${context.address === undefined ? '' : ` (from ${context.address})`}`);
    this.remoteName = wire.name;
    this.remoteMessage = wire.message;
    this.remoteStack = wire.stack;
    this.remoteCode = wire.code;
    this.data = wire.data;
    this.address = context.address;
    this.key = context.key;
    if (wire.stack !== undefined) {
      // The remote stack is what the user wants to read; the local frames follow it.
      const local = (this.stack ?? '').split('\n').slice(1).join('\n');
      const where = context.key !== undefined ? ` (task ${context.key})` : context.address !== undefined ? ` (${context.address})` : '';
      this.stack = `${this.name}: ${this.message}\n  remote stack${where}:\n${indent(wire.stack)}\n  local stack:\n${local}`;
    }
  }
}

function indent(text: string): string {
  return text.split('\n').map((l) => `    ${l.trimStart()}`).join('\n');
}

/** The wire form of any thrown value, for an error reply. */
export function errorToWire(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      stack: err.stack,
      code: typeof code === 'string' ? code : undefined,
    };
  }
  return { name: 'Error', message: String(err), stack: undefined, code: undefined };
}

/** Error codes of transient network failures that connect() retries. */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'EAI_AGAIN', 'EPIPE', 'ENOTFOUND',
]);

export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/** True when `err` (or one of its causes) comes from OpenSSL certificate / TLS negotiation. */
export function isTlsFailure(err: unknown): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(ERR_SSL|ERR_TLS|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|DD_ERR_TLS)/.test(code)) return true;
    const library = (e as { library?: unknown }).library;
    if (library === 'SSL routines') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
