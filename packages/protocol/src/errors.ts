// Errors shared by every dd package. Each failure is its own class with a stable `code`;
// `instanceof` also works across realms (worker threads, duplicated package copies) through
// a Symbol.for marker, because dd moves errors between threads and processes.

const DD_ERROR = Symbol.for('dd.error');

export interface DdErrorOptions {
  cause?: unknown;
}

export class DdError extends Error {
  readonly code: string = 'DD_ERR';
  readonly [DD_ERROR] = true;

  constructor(message: string, options?: DdErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    if (this === DdError) return (value as Record<symbol, unknown>)[DD_ERROR] === true;
    return Function.prototype[Symbol.hasInstance].call(this, value) ||
      ((value as Record<symbol, unknown>)[DD_ERROR] === true && (value as Error).name === this.name);
  }
}

/** A peer sent bytes that do not follow the dd wire format. */
export class ProtocolError extends DdError {
  override readonly code: string = 'DD_ERR_PROTOCOL';
}

/** A peer announced more frames or bytes than the reader accepts. */
export class FrameLimitError extends ProtocolError {
  override readonly code: string = 'DD_ERR_FRAME_LIMIT';
}

/** A frame could not be turned back into a value (bad msgpack, bad sub-header, bad payload). */
export class DeserializationError extends ProtocolError {
  override readonly code: string = 'DD_ERR_DESERIALIZE';
}

/** A payload names a serializer family this process does not know. */
export class UnknownSerializerError extends DeserializationError {
  override readonly code: string = 'DD_ERR_UNKNOWN_SERIALIZER';
  constructor(readonly serializer: string) {
    super(`unknown serializer ${JSON.stringify(serializer)}`);
  }
}

/** A value cannot be serialized by any known family. */
export class SerializationError extends DdError {
  override readonly code: string = 'DD_ERR_SERIALIZE';
}
