// The `js` run spec: what a worker needs to run a JavaScript task. The client encodes it, the
// scheduler carries it as opaque bytes, the worker decodes it.
//
//   fn:   by source (self-contained function text, compiled once per hash on the worker) or by
//         module reference (specifier + export name, imported on the worker).
//   args: the call's arguments; wherever a dependency's value belongs (at any depth of arrays
//         and plain objects) stands a KeyRef `{__ddKey__: key}`.

import { decodeMessage, encodeMessage } from './message';
import { packFrames, preludeSize, unpackFrames } from './frames';
import { acquireEncoder, decodeMsgpack, decodeMsgpackResolving, encodePlain, releaseEncoder, type OutOfBandSink } from './msgpack-codec';
import { DeserializationError } from './errors';
import type { Key, WireRunSpec } from './messages';

export const JS_LANGUAGE = 'js';

export type FunctionRef =
  | { kind: 'source'; name: string; source: string; hash: string }
  | { kind: 'module'; module: string; export: string };

export interface JsTaskSpec {
  fn: FunctionRef;
  args: unknown[];
}

export interface KeyRef {
  __ddKey__: Key;
}

/** The one field of a KeyRef (KeyRef's own name for it). */
const KEY_REF_FIELD: keyof KeyRef = '__ddKey__';

export function keyRef(key: Key): KeyRef {
  return { __ddKey__: key };
}

export function isKeyRef(value: unknown): value is KeyRef {
  return typeof value === 'object' && value !== null && typeof (value as KeyRef).__ddKey__ === 'string'
    && Object.keys(value).length === 1;
}

export function encodeTaskSpec(spec: JsTaskSpec): WireRunSpec {
  return { language: JS_LANGUAGE, data: encodePlainSpec(spec) ?? packFrames(encodeMessage(spec)) };
}

// The same bytes as packFrames(encodeMessage(spec)) when the arguments are plain msgpack (the
// common case): the prelude of one frame, then the map {fn, args}, whose beginning up to the
// arguments is encoded once per FunctionRef (a map of 10 000 calls encoded the function's
// name, source and hash 10 000 times, and copied every spec twice: ~6 us of ~7 per spec).

/** `{fn: <ref>, args: ` as msgpack (map header for two entries), per FunctionRef object. */
const specHeads = new WeakMap<FunctionRef, Uint8Array>();
/** msgpack fixstr "args". */
const ARGS_KEY = [0xa4, 0x61, 0x72, 0x67, 0x73];

function specHead(fn: FunctionRef): Uint8Array | undefined {
  let head = specHeads.get(fn);
  if (head === undefined) {
    let fnOnly: Uint8Array;
    try {
      fnOnly = encodePlain({ fn }); // fixmap of one entry, "fn", the ref
    } catch {
      return undefined; // not plain: the general path reports it
    }
    head = new Uint8Array(fnOnly.byteLength + ARGS_KEY.length);
    head.set(fnOnly);
    head[0] = 0x82; // fixmap of two entries
    head.set(ARGS_KEY, fnOnly.byteLength);
    specHeads.set(fn, head);
  }
  return head;
}

/** Notes that a value is not plain msgpack instead of serializing it. */
class PlainCheck implements OutOfBandSink {
  notPlain = false;
  takeOutOfBand(): number {
    this.notPlain = true;
    return 0;
  }
}
const plainCheck = new PlainCheck();

function encodePlainSpec(spec: JsTaskSpec): Uint8Array | undefined {
  if (typeof spec.fn !== 'object' || spec.fn === null || !Array.isArray(spec.args)) return undefined;
  const head = specHead(spec.fn);
  if (head === undefined) return undefined;
  const encoder = acquireEncoder();
  try {
    plainCheck.notPlain = false;
    // Depth 2: inside the spec's map, as in encodeMessage (same nesting limit).
    const args = encoder.encodeShared(spec.args, plainCheck, 2);
    if (plainCheck.notPlain) return undefined;
    const frameBytes = head.byteLength + args.byteLength;
    if (frameBytes > 0xffffffff) return undefined;
    const out = new Uint8Array(preludeSize(1) + frameBytes);
    // Prelude: frame count 1, frame length (uint64 little-endian; a spec is far below 2^32).
    out[0] = 1;
    out[8] = frameBytes & 0xff;
    out[9] = (frameBytes >>> 8) & 0xff;
    out[10] = (frameBytes >>> 16) & 0xff;
    out[11] = frameBytes >>> 24;
    out.set(head, 16);
    out.set(args, 16 + head.byteLength);
    return out;
  } catch {
    return undefined; // e.g. nested too deep: the general path throws the usual error
  } finally {
    releaseEncoder(encoder);
  }
}

// Decoding: the tasks a worker runs in a row mostly call one function, and their specs start
// with the same bytes up to the arguments (see encodePlainSpec). The last function decoded is
// kept with those bytes; a spec that starts with them decodes only its arguments. Decoding the
// function's name, source and hash again for every task was most of a spec's decoding.
let lastHead: Uint8Array | undefined;
let lastFn: FunctionRef | undefined;

/** The spec's function and arguments. The FunctionRef may be shared with other specs: do not change it. */
export function decodeTaskSpec(run: WireRunSpec): JsTaskSpec {
  const frames = specFrames(run);
  const head = lastHead;
  if (head !== undefined && frames.length === 1 && startsWith(frames[0]!, head)) {
    return { fn: lastFn!, args: checkedArgs(decodeMsgpack(frames[0]!.subarray(head.byteLength), 'frame 0')) };
  }
  const spec = checkedSpec(decodeMessage(frames));
  if (frames.length === 1) rememberHead(spec.fn, frames[0]!);
  return spec;
}

/**
 * The spec's function and its arguments with every KeyRef replaced by `lookup(key)`: what
 * decodeTaskSpec then substituteKeyRefs return, but for a spec of plain msgpack (one frame, the
 * usual case) the references are looked up as they are decoded, with no KeyRef objects made and
 * no second walk. For a sum over 10 000 results the two steps took 24-57 ms in a fresh process
 * (this: 17-27).
 * `lookup` must not throw or decode msgpack itself.
 */
export function decodeTaskCall(run: WireRunSpec, lookup: (key: Key) => unknown): JsTaskSpec {
  const frames = specFrames(run);
  if (frames.length !== 1) {
    const spec = checkedSpec(decodeMessage(frames));
    return { fn: spec.fn, args: substituteKeyRefs(spec.args, lookup) as unknown[] };
  }
  const frame = frames[0]!;
  const head = lastHead;
  if (head !== undefined && startsWith(frame, head)) {
    const { value, resolved } = decodeMsgpackResolving(frame.subarray(head.byteLength), 'frame 0', KEY_REF_FIELD, lookup);
    const args = checkedArgs(value);
    return { fn: lastFn!, args: resolved ? args : (substituteKeyRefs(args, lookup) as unknown[]) };
  }
  const { value, resolved } = decodeMsgpackResolving(frame, 'frame 0', KEY_REF_FIELD, lookup);
  // A function reference is a map of three or four entries, so resolving left it alone.
  const spec = checkedSpec(value);
  rememberHead(spec.fn, frame);
  return resolved ? spec : { fn: spec.fn, args: substituteKeyRefs(spec.args, lookup) as unknown[] };
}

function specFrames(run: WireRunSpec): Uint8Array[] {
  if (run.language !== JS_LANGUAGE) {
    throw new DeserializationError(`run spec language ${JSON.stringify(run.language)} is not ${JS_LANGUAGE}`);
  }
  return unpackFrames(run.data);
}

function checkedSpec(value: unknown): JsTaskSpec {
  const spec = value as JsTaskSpec;
  if (typeof spec !== 'object' || spec === null || !Array.isArray(spec.args) || typeof spec.fn !== 'object' || spec.fn === null) {
    throw new DeserializationError('malformed js task spec');
  }
  return spec;
}

function checkedArgs(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new DeserializationError('malformed js task spec');
  return value;
}

/** Keeps the spec's function for the next specs that start with the same bytes. */
function rememberHead(fn: FunctionRef, frame: Uint8Array): void {
  const fnHead = specHead(fn);
  if (fnHead !== undefined && startsWith(frame, fnHead)) {
    lastHead = fnHead;
    lastFn = Object.freeze(fn);
  }
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = prefix.byteLength;
  if (bytes.byteLength < n) return false;
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Replaces every KeyRef in `value` (arrays and plain objects, any depth) by `lookup(key)`. */
export function substituteKeyRefs(value: unknown, lookup: (key: Key) => unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const s = substituteKeyRefs(v, lookup);
      if (s !== v) (out ??= value.slice())[i] = s;
    }
    return out ?? value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  if (isKeyRef(value)) return lookup(value.__ddKey__);
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k];
    const s = substituteKeyRefs(v, lookup);
    if (s !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = s;
  }
  return out ?? value;
}
