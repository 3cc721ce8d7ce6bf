// Errors in the "dd" family. The sub-frames are a nested dd message of the record below, so a
// cause or a custom property may be any dd value (another Error, a Buffer, a Map, ...).
// Built-in error classes come back as themselves; any other class comes back as an Error whose
// `name` is the original class's name (register the class with registerSerializer to keep it).

export interface ErrorRecord {
  name: string;
  message: string;
  stack?: string;
  /** Present iff the error had an own `cause` (which may itself be undefined). */
  cause?: unknown;
  /** AggregateError's `errors`. */
  errors?: unknown[];
  /** Own enumerable properties (e.g. `code`), except the fields above. */
  props: Record<string, unknown>;
}

const BUILTIN_ERRORS: ReadonlyMap<string, ErrorConstructor> = new Map<string, ErrorConstructor>([
  ['Error', Error],
  ['TypeError', TypeError],
  ['RangeError', RangeError],
  ['SyntaxError', SyntaxError],
  ['ReferenceError', ReferenceError],
  ['EvalError', EvalError],
  ['URIError', URIError],
  ['AggregateError', AggregateError as unknown as ErrorConstructor],
]);

const RECORD_FIELDS = new Set(['name', 'message', 'stack', 'cause', 'errors']);

export function errorToRecord(error: Error): ErrorRecord {
  const record: ErrorRecord = { name: String(error.name), message: String(error.message), props: {} };
  if (typeof error.stack === 'string') record.stack = error.stack;
  if (Object.hasOwn(error, 'cause')) record.cause = error.cause;
  if (error instanceof AggregateError) record.errors = [...(error.errors as unknown[])];
  for (const key of Object.keys(error)) {
    if (!RECORD_FIELDS.has(key)) record.props[key] = (error as unknown as Record<string, unknown>)[key];
  }
  return record;
}

function define(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable });
}

export function errorFromRecord(record: ErrorRecord): Error {
  const ctor = BUILTIN_ERRORS.get(record.name) ?? Error;
  const error = ctor === (AggregateError as unknown) ? new AggregateError(record.errors ?? [], record.message) : new ctor(record.message);
  if (error.name !== record.name) define(error, 'name', record.name, false);
  if (record.stack === undefined) delete (error as { stack?: string }).stack;
  else define(error, 'stack', record.stack, false);
  if (Object.hasOwn(record, 'cause')) define(error, 'cause', record.cause, false);
  for (const key of Object.keys(record.props)) define(error, key, record.props[key], true);
  return error;
}

export function isErrorRecord(value: unknown): value is ErrorRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.name === 'string' && typeof r.message === 'string' && (r.stack === undefined || typeof r.stack === 'string') &&
    typeof r.props === 'object' && r.props !== null && (r.errors === undefined || Array.isArray(r.errors));
}
