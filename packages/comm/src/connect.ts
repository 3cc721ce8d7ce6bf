// connect(): open a comm to an address, retrying transient failures with exponential backoff
// and jitter until the deadline, then run the handshake. listen(): a listener whose accepted
// comms are handshaken (and admission-checked) before they reach the handler.

import { ProtocolError } from '@dd/protocol';
import { parseAddress } from './addressing';
import type { Comm, CommHandler, ConfigurableComm, ConnectOptions, ListenOptions, Listener } from './comm';
import { CommClosedError, ConnectionLimitError, TimeoutError, TlsError, isRetryableNetworkError, isTlsFailure } from './errors';
import { makeHandshake, performHandshake } from './handshake';
import { getBackend } from './registry';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const FIRST_BACKOFF_MS = 5;
const MAX_BACKOFF_MS = 1000;

/** Waits `ms`, or less if `signal` aborts meanwhile. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** (A function, so that TypeScript does not keep its narrowing of `aborted` across awaits.) */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function aborted(address: string): CommClosedError {
  return new CommClosedError(`connecting to ${address} was aborted`);
}

/** Failures worth another attempt: the peer is not (yet) there, or is momentarily full. */
function isRetryable(err: unknown): boolean {
  if (isTlsFailure(err)) return false;
  return isRetryableNetworkError(err) || err instanceof ConnectionLimitError || err instanceof CommClosedError;
}

export async function connect(address: string, options: ConnectOptions = {}): Promise<Comm> {
  const [scheme, location] = parseAddress(address);
  const backend = getBackend(scheme);
  const timeout = options.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = Date.now() + timeout;
  let backoff = FIRST_BACKOFF_MS;
  let attempts = 0;
  /** The last failure that was not just the deadline running out (reported in the TimeoutError). */
  let lastError: unknown;
  const { signal, ...transportOptions } = options;
  const timedOut = (last: unknown): TimeoutError =>
    new TimeoutError(
      `timed out after ${timeout} ms trying to connect to ${address} (${attempts} attempts; last error: ${(last as Error)?.message ?? String(last)})`,
      { cause: last },
    );
  for (;;) {
    if (isAborted(signal)) throw aborted(address);
    // No attempt on a spent budget: it could only time out, hiding why the earlier ones failed.
    if (attempts > 0 && Date.now() >= deadline) throw timedOut(lastError);
    attempts++;
    const remaining = Math.max(1, deadline - Date.now());
    let comm: ConfigurableComm | undefined;
    // An abort during the handshake drops the half-open comm, so the read fails at once.
    const onAbort = (): void => comm?.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      comm = await backend.connect(location, { ...transportOptions, attemptTimeout: remaining });
      if (isAborted(signal)) throw aborted(address);
      await performHandshake(comm, { compression: options.compression, timeoutMs: Math.max(1, deadline - Date.now()) });
      return comm;
    } catch (err) {
      comm?.abort();
      if (isAborted(signal)) throw aborted(address);
      if (isTlsFailure(err)) {
        throw err instanceof TlsError ? err : new TlsError(`TLS connection to ${address} failed: ${(err as Error).message}`, { cause: err });
      }
      // The deadline ran out inside an attempt (its connect or its handshake): report why the
      // attempts before it failed, if they did (a server refusing at its connection limit).
      if (err instanceof TimeoutError) throw timedOut(lastError ?? err);
      if (err instanceof ProtocolError || !isRetryable(err)) throw err;
      lastError = err;
      if (Date.now() >= deadline) throw timedOut(lastError);
      // Full jitter on an exponential backoff: concurrent clients of a restarting server do not retry in lockstep.
      const wait = Math.random() * backoff;
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      await sleep(Math.min(wait, deadline - Date.now()), signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * A listener on `address` (port 0 picks a free port). Each accepted connection is admitted (or
 * refused in its handshake) and handshaken before `handler` gets it; connections that fail the
 * handshake are closed and reported through `onHandshakeError`, never thrown.
 */
export function listen(address: string, handler: CommHandler, options: ListenOptions = {}): Listener {
  const [scheme, location] = parseAddress(address);
  const backend = getBackend(scheme);
  const handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const report = (err: Error, peer: string, peerSentData: boolean): void => {
    try {
      options.onHandshakeError?.(err, peer, peerSentData);
    } catch {
      // Reporting must not break accepting.
    }
  };
  const onRawComm = (comm: ConfigurableComm): void => {
    let refusal = comm.refusal;
    if (refusal === undefined) {
      const reason = options.admit?.(comm);
      if (reason !== undefined) refusal = { code: 'DD_ERR_CONNECTION_LIMIT', reason };
    }
    if (refusal !== undefined) {
      // Say why, then hang up: the client's connect() fails with a clear error (and backs off
      // and retries if the refusal is a transient one like the connection limit).
      comm.write(makeHandshake(options.compression, refusal)).then(
        () => comm.close(),
        () => comm.abort(),
      );
      const message = `refused ${comm.peerAddress}: ${refusal.reason}`;
      // A TLS refusal follows a TLS handshake (the peer sent data); a connection-limit one is
      // decided before anything is read.
      const tls = refusal.code === 'DD_ERR_TLS';
      report(tls ? new TlsError(message) : new ConnectionLimitError(message), comm.peerAddress, tls);
      return;
    }
    performHandshake(comm, { compression: options.compression, timeoutMs: handshakeTimeout }).then(
      () => {
        try {
          handler(comm);
        } catch (err) {
          report(err as Error, comm.peerAddress, true);
          comm.abort();
        }
      },
      (err: Error) => {
        // A ProtocolError comes from the peer's bytes (garbage, not a handshake, another
        // version, a message cut off); a timeout or a close may follow part of a message.
        const peerSentData = err instanceof ProtocolError || comm.partialMessageBytes > 0;
        comm.abort();
        report(err, comm.peerAddress, peerSentData);
      },
    );
  };
  return backend.createListener(location, onRawComm, options);
}
