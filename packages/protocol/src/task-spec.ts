// The `js` run spec: what a worker needs to run a JavaScript task. The client encodes it, the
// scheduler carries it as opaque bytes, the worker decodes it.
//
//   fn:   by source (self-contained function text, compiled once per hash on the worker) or by
//         module reference (specifier + export name, imported on the worker).
//   args: the call's arguments; wherever a dependency's value belongs (at any depth of arrays
//         and plain objects) stands a KeyRef `{__ddKey__: key}`.

import { decodeMessage, encodeMessage } from './message';
import { packFrames, unpackFrames } from './frames';
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

export function keyRef(key: Key): KeyRef {
  return { __ddKey__: key };
}

export function isKeyRef(value: unknown): value is KeyRef {
  return typeof value === 'object' && value !== null && typeof (value as KeyRef).__ddKey__ === 'string'
    && Object.keys(value).length === 1;
}

export function encodeTaskSpec(spec: JsTaskSpec): WireRunSpec {
  return { language: JS_LANGUAGE, data: packFrames(encodeMessage(spec)) };
}

export function decodeTaskSpec(run: WireRunSpec): JsTaskSpec {
  if (run.language !== JS_LANGUAGE) {
    throw new DeserializationError(`run spec language ${JSON.stringify(run.language)} is not ${JS_LANGUAGE}`);
  }
  const spec = decodeMessage(unpackFrames(run.data)) as JsTaskSpec;
  if (typeof spec !== 'object' || spec === null || !Array.isArray(spec.args) || typeof spec.fn !== 'object') {
    throw new DeserializationError('malformed js task spec');
  }
  return spec;
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
