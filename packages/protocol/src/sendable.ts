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
  if (sendable(value, 1, 0, null)) return;
  // Something is wrong: walk again, keeping the path and the enclosing objects, to say what.
  sendable(value, 1, 0, new Diagnosis());
  throw new SerializationError('the value cannot be sent'); // not reached: a diagnosing walk throws
}

/**
 * One walk, two modes. Without a Diagnosis (the check every result pays) it keeps no path and no
 * set of enclosing objects, a cycle showing as nesting past the limit, and returns false at the
 * first problem: three checks of 100 000 small objects took 49, 18 and 22 ms this way, against
 * 107, 74 and 35 with the set and the path kept. With one, it throws an error that says what and where.
 */
function sendable(value: object, depth: number, payloads: number, diag: Diagnosis | null): boolean {
  if (ArrayBuffer.isView(value)) return true;
  const isArray = Array.isArray(value);
  const isPlain = !isArray && (isPlainObject(value) || isPlainObjectOfAnotherRealm(value));
  const isMap = !isArray && !isPlain && value instanceof Map;
  if (!isArray && !isPlain && !isMap && !(value instanceof Set)) return true; // the serializers' business
  diag?.enter(value);
  if (isArray || isPlain) {
    if (depth > MAX_SENDABLE_DEPTH) return diag === null ? false : diag.fail(`the value nests deeper than ${MAX_SENDABLE_DEPTH} levels (at ${diag.where()}), more than dd's messages carry`);
  } else if (payloads + 1 > MAX_SENDABLE_PAYLOAD_NESTING) {
    return diag === null ? false : diag.fail(`the value has Maps or Sets nested more than ${MAX_SENDABLE_PAYLOAD_NESTING} deep (at ${diag.where()}), more than dd's messages carry`);
  }
  if (isArray) {
    const items = value as unknown[];
    for (let i = 0; i < items.length; i++) if (!child(items[i], i, depth + 1, payloads, diag)) return false;
  } else if (isPlain) {
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key === '__proto__' || key === PLACEHOLDER_KEY) {
        if (diag === null) return false;
        diag.path.push(key);
        const why = key === '__proto__' ? ' (receivers refuse it: it would set the prototype of the decoded object); rename the key or use a Map' : ' (the protocol reserves it)';
        diag.fail(`the value has an own key ${JSON.stringify(key)} (at ${diag.where()}), which dd's messages cannot carry${why}`);
      }
      if (!child((value as Record<string, unknown>)[key], key, depth + 1, payloads, diag)) return false;
    }
  } else {
    // Entries are encoded as a message of their own: plain nesting starts again.
    let i = 0;
    if (isMap) {
      for (const [k, v] of value as Map<unknown, unknown>) {
        if (!child(k, `<key ${i}>`, 1, payloads + 1, diag) || !child(v, `<value ${i}>`, 1, payloads + 1, diag)) return false;
        i++;
      }
    } else {
      for (const v of value as Set<unknown>) if (!child(v, `<item ${i++}>`, 1, payloads + 1, diag)) return false;
    }
  }
  diag?.leave(value);
  return true;
}

/** Walks into `v` when it is an object; `at` names it in a diagnosis's path. */
function child(v: unknown, at: string | number, depth: number, payloads: number, diag: Diagnosis | null): boolean {
  if (typeof v !== 'object' || v === null) return true;
  if (diag === null) return sendable(v, depth, payloads, null);
  diag.path.push(typeof at === 'number' ? `[${at}]` : at);
  sendable(v, depth, payloads, diag);
  diag.path.pop();
  return true;
}

/** The path to where a diagnosing walk is, and the objects enclosing it (to tell a cycle). */
class Diagnosis {
  readonly path: string[] = [];
  private readonly ancestors = new Set<object>();

  enter(value: object): void {
    if (this.ancestors.has(value)) {
      this.fail(`the value refers to itself: ${this.where()} is the same object as an enclosing one (a cycle); dd sends plain data (msgpack), which has no references, so return or pass data without cycles`);
    }
    this.ancestors.add(value);
  }

  leave(value: object): void {
    this.ancestors.delete(value);
  }

  fail(message: string): never {
    throw new SerializationError(message);
  }

  where(): string {
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
