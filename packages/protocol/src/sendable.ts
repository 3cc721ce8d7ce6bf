// Whether a value a worker holds can travel in a dd message at all. Structured clone (how a
// result leaves its executor thread) takes cycles and any key; msgpack, dd's wire format, has no
// references, and receivers refuse an own `__proto__` key (it would set the decoded object's
// prototype). A result that fails here fails its task, which names the task and the reason;
// otherwise the failure came only when the value was first sent, where it looked like a lost
// worker: dependents' fetches failed, and the scheduler recomputed the task again and again.

import { SerializationError } from './errors';
import { MAX_PAYLOAD_NESTING } from './message';
import { MAX_ENCODE_DEPTH, PLACEHOLDER_KEY, isPlainObject } from './msgpack-encoder';

/**
 * Levels a value may nest: the encoder's limit, less the levels of the messages that carry
 * values (get-data's `{data: {key: value}}` puts a value three deep).
 */
export const MAX_SENDABLE_DEPTH = MAX_ENCODE_DEPTH - 8;

/**
 * Levels of Maps and Sets inside each other: each is a payload of its own (a nested message, in
 * which plain nesting counts from 1 again), and the encoder takes MAX_PAYLOAD_NESTING of them,
 * counting the payloads that carry values.
 */
const MAX_SENDABLE_PAYLOAD_NESTING = MAX_PAYLOAD_NESTING - 4;

/**
 * Throws SerializationError, naming where in the value, when `value` holds a cycle, nests deeper
 * than MAX_SENDABLE_DEPTH, or has an object key the protocol refuses. Walks arrays, plain
 * objects, Maps and Sets; other objects (binary data, Dates, class instances) are left to their
 * serializers. Linear in the size of the value; primitives cost one typeof.
 */
export function checkSendable(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  if (sendable(value, 1, 0)) return;
  // Something is wrong: walk again, keeping the path and the enclosing objects, to say what.
  new SendableWalk().visit(value, 1, 0);
  throw new SerializationError('the value cannot be sent'); // not reached: the walk throws
}

/**
 * The fast check: no path, no set of enclosing objects (a cycle shows as nesting past the
 * limit). 100 000 small objects took 35-107 ms with the path and the set kept for every object.
 */
function sendable(value: object, depth: number, payloads: number): boolean {
  if (ArrayBuffer.isView(value)) return true;
  if (Array.isArray(value)) {
    if (depth > MAX_SENDABLE_DEPTH) return false;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'object' && v !== null && !sendable(v, depth + 1, payloads)) return false;
    }
    return true;
  }
  if (isPlainObject(value) || isPlainObjectOfAnotherRealm(value)) {
    if (depth > MAX_SENDABLE_DEPTH) return false;
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key === '__proto__' || key === PLACEHOLDER_KEY) return false;
      const v = (value as Record<string, unknown>)[key];
      if (typeof v === 'object' && v !== null && !sendable(v, depth + 1, payloads)) return false;
    }
    return true;
  }
  const isMap = value instanceof Map;
  if (!isMap && !(value instanceof Set)) return true;
  if (payloads + 1 > MAX_SENDABLE_PAYLOAD_NESTING) return false;
  for (const entry of isMap ? (value as Map<unknown, unknown>).entries() : (value as Set<unknown>).values()) {
    const items = isMap ? (entry as [unknown, unknown]) : [entry];
    for (const v of items) if (typeof v === 'object' && v !== null && !sendable(v, 1, payloads + 1)) return false;
  }
  return true;
}

class SendableWalk {
  private readonly ancestors = new Set<object>();
  private readonly path: string[] = [];

  visit(value: object, depth: number, payloads: number): void {
    if (ArrayBuffer.isView(value)) return;
    const isArray = Array.isArray(value);
    const isPlain = !isArray && (isPlainObject(value) || isPlainObjectOfAnotherRealm(value));
    const isMap = value instanceof Map;
    const isSet = !isMap && value instanceof Set;
    if (!isArray && !isPlain && !isMap && !isSet) return;
    if (this.ancestors.has(value)) {
      throw new SerializationError(
        `the value refers to itself: ${this.where()} is the same object as an enclosing one (a cycle); dd sends plain data (msgpack), which has no references, so return or pass data without cycles`,
      );
    }
    if (depth > MAX_SENDABLE_DEPTH) {
      throw new SerializationError(`the value nests deeper than ${MAX_SENDABLE_DEPTH} levels (at ${this.where()}), more than dd's messages carry`);
    }
    if ((isMap || isSet) && payloads + 1 > MAX_SENDABLE_PAYLOAD_NESTING) {
      throw new SerializationError(`the value has Maps or Sets nested more than ${MAX_SENDABLE_PAYLOAD_NESTING} deep (at ${this.where()}), more than dd's messages carry`);
    }
    this.ancestors.add(value);
    if (isArray) {
      const items = value as unknown[];
      for (let i = 0; i < items.length; i++) this.child(items[i], depth, payloads, i);
    } else if (isPlain) {
      for (const key of Object.keys(value)) {
        if (key === '__proto__' || key === PLACEHOLDER_KEY) {
          this.path.push(key);
          throw new SerializationError(
            `the value has an own key ${JSON.stringify(key)} (at ${this.where()}), which dd's messages cannot carry${key === '__proto__' ? ' (receivers refuse it: it would set the prototype of the decoded object); rename the key or use a Map' : ' (the protocol reserves it)'}`,
          );
        }
        this.child((value as Record<string, unknown>)[key], depth, payloads, key);
      }
    } else if (isMap) {
      let i = 0;
      // Its entries are encoded as a message of their own: plain nesting starts again.
      for (const [k, v] of value as Map<unknown, unknown>) {
        this.child(k, 0, payloads + 1, `<key ${i}>`);
        this.child(v, 0, payloads + 1, `<value ${i}>`);
        i++;
      }
    } else {
      let i = 0;
      for (const v of value as Set<unknown>) this.child(v, 0, payloads + 1, `<item ${i++}>`);
    }
    this.ancestors.delete(value);
  }

  private child(v: unknown, depth: number, payloads: number, at: string | number): void {
    if (typeof v !== 'object' || v === null) return;
    this.path.push(typeof at === 'number' ? `[${at}]` : at);
    this.visit(v, depth + 1, payloads);
    this.path.pop();
  }

  private where(): string {
    if (this.path.length === 0) return 'the value itself';
    let out = 'value';
    for (const p of this.path) out += p.startsWith('[') ? p : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : p.startsWith('<') ? ` ${p}` : `[${JSON.stringify(p)}]`;
    return out;
  }
}

/**
 * `{...}` made in another realm (a vm context: task code compiled in the host realm under a test
 * runner): its prototype is that realm's Object.prototype. Checked after the cheap test fails.
 */
function isPlainObjectOfAnotherRealm(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null;
  return proto !== null && Object.getPrototypeOf(proto) === null && typeof proto.constructor === 'function' && proto.constructor.name === 'Object';
}
