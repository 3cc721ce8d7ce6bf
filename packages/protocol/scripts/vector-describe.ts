// The tagged JSON form of decoded values used by vectors.json. JSON values stand for themselves
// except that objects with a "$type" key are tags (the vectors never use "$type" as a key):
//   {"$type":"undefined"}
//   {"$type":"number","value":"NaN"|"Infinity"|"-Infinity"|"-0"}
//   {"$type":"bigint","value":"<decimal>"}
//   {"$type":"Date","value":<ms>|"NaN"}
//   {"$type":"Map","entries":[[k,v],...]}        {"$type":"Set","values":[...]}
//   {"$type":"<Buffer|Uint8Array|DataView|ArrayBuffer>","hex":"..."}
//   {"$type":"<typed array>","hex":"...","values":[...]}   (64-bit integer elements as decimal strings)
//   {"$type":"Error","name","message","stack","props":{...}[,"cause"]}
//   {"$type":"class","name":"<registered name>","data":<tagged data>}

import { Serialize } from '../src';
import { VectorPoint, VECTOR_POINT_NAME } from './vector-cases';

type Tagged = null | boolean | number | string | Tagged[] | { [key: string]: Tagged };

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function describeForVectors(value: unknown): Tagged {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return { $type: 'number', value: Object.is(value, -0) ? '-0' : String(value) };
    case 'undefined':
      return { $type: 'undefined' };
    case 'bigint':
      return { $type: 'bigint', value: value.toString() };
    case 'object':
      break;
    default:
      throw new TypeError(`no tagged form for ${typeof value}`);
  }
  if (value === null) return null;
  if (Array.isArray(value)) return Array.from(value, describeForVectors);
  if (value instanceof Serialize) return describeForVectors(value.value); // the receiver gets the bare value
  if (value instanceof VectorPoint) return { $type: 'class', name: VECTOR_POINT_NAME, data: describeForVectors(value.toData()) };
  if (value instanceof Map) return { $type: 'Map', entries: [...value].map(([k, v]) => [describeForVectors(k), describeForVectors(v)]) };
  if (value instanceof Set) return { $type: 'Set', values: [...value].map(describeForVectors) };
  if (value instanceof Date) return { $type: 'Date', value: Number.isNaN(value.getTime()) ? 'NaN' : value.getTime() };
  if (value instanceof ArrayBuffer) return { $type: 'ArrayBuffer', hex: hex(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) {
    const type = Buffer.isBuffer(value) ? 'Buffer' : value.constructor.name;
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (type === 'Buffer' || type === 'Uint8Array' || type === 'DataView') return { $type: type, hex: hex(bytes) };
    const values = Array.from(value as unknown as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v));
    return { $type: type, hex: hex(bytes), values };
  }
  if (value instanceof Error) {
    const props: { [key: string]: Tagged } = {};
    for (const key of Object.keys(value)) if (key !== 'name') props[key] = describeForVectors((value as unknown as Record<string, unknown>)[key]);
    const out: { [key: string]: Tagged } = { $type: 'Error', name: value.name, message: value.message, stack: value.stack ?? null, props };
    if (Object.hasOwn(value, 'cause')) out.cause = describeForVectors(value.cause);
    return out;
  }
  const out: { [key: string]: Tagged } = {};
  for (const key of Object.keys(value)) out[key] = describeForVectors((value as Record<string, unknown>)[key]);
  return out;
}
