// checkSendable: values a worker can hold but dd's messages cannot carry are named before they
// are sent; everything the encoder takes passes.

import { checkSendable, encodeMessage, MAX_SENDABLE_DEPTH, SerializationError } from '../src/index';

function nested(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

describe('checkSendable', () => {
  test('plain data, shared (acyclic) references and the serializers\' types pass, as the encoder takes them', () => {
    const shared = { x: 1 };
    const values: unknown[] = [
      1,
      'text',
      null,
      undefined,
      10n,
      [1, [2, [3]]],
      { a: shared, b: [shared, shared] },
      new Map<unknown, unknown>([['k', shared], [shared, 'v']]),
      new Set([shared, [shared]]),
      Buffer.alloc(8),
      new Float64Array(4),
      new Date(0),
      new Error('as data'),
      nested(MAX_SENDABLE_DEPTH - 1),
    ];
    for (const v of values) {
      expect(() => checkSendable(v)).not.toThrow();
      expect(() => encodeMessage({ data: { key: v } })).not.toThrow();
    }
  });

  test('a cycle is named with where it closes, through arrays, objects, Maps and Sets', () => {
    const obj: Record<string, unknown> = { a: { b: [1, 2] } };
    ((obj['a'] as Record<string, unknown>)['b'] as unknown[]).push(obj);
    expect(() => checkSendable(obj)).toThrow(SerializationError);
    expect(() => checkSendable(obj)).toThrow('value.a.b[2] is the same object as an enclosing one (a cycle)');
    const arr: unknown[] = [];
    arr.push(arr);
    expect(() => checkSendable(arr)).toThrow('value[0] is the same object');
    const map = new Map<string, unknown>();
    map.set('self', { inner: map });
    expect(() => checkSendable(map)).toThrow('value <value 0>.inner is the same object');
    const set = new Set<unknown>();
    set.add([set]);
    expect(() => checkSendable({ s: set })).toThrow('a cycle');
  });

  test('nesting deeper than a message carries, and keys the protocol refuses, are named', () => {
    expect(() => checkSendable(nested(MAX_SENDABLE_DEPTH + 1))).toThrow(`nests deeper than ${MAX_SENDABLE_DEPTH} levels`);
    const proto = JSON.parse('{"ok": 1, "inner": {"__proto__": {"polluted": true}}}') as unknown;
    expect(() => checkSendable(proto)).toThrow('own key "__proto__" (at value.inner.__proto__)');
    expect(() => checkSendable({ __Serialized__: 0 })).toThrow('the protocol reserves it');
    // Maps and Sets are payloads of their own, which nest at most MAX_PAYLOAD_NESTING deep.
    const trie = (levels: number): unknown => (levels === 0 ? 1 : new Map([['k', trie(levels - 1)]]));
    expect(() => checkSendable(trie(50))).not.toThrow();
    expect(() => encodeMessage({ data: { key: trie(50) } })).not.toThrow();
    expect(() => encodeMessage({ data: { key: trie(70) } })).toThrow(SerializationError);
    expect(() => checkSendable(trie(70))).toThrow('Maps or Sets nested more than');
  });

  test('the encoder refuses an own "__proto__" key when sending, instead of the receiver failing to decode it', () => {
    const proto = JSON.parse('{"__proto__": 1}') as unknown;
    expect(() => encodeMessage({ op: 'x', value: proto })).toThrow(SerializationError);
    expect(() => encodeMessage({ op: 'x', value: proto })).toThrow('"__proto__"');
  });
});
