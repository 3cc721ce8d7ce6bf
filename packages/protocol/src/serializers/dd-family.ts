// The "dd" family: JavaScript values that msgpack cannot carry, each tagged by `type` in the
// sub-header.
//   type               extra header fields   sub-frames
//   <binary type>      -                     1: raw bytes (see binary-types.ts)
//   Map                -                     nested message of [k0, v0, k1, v1, ...]
//   Set                -                     nested message of [v0, v1, ...]
//   Date               value: ms since epoch (NaN for an invalid date)    none
//   BigInt             value: decimal string                             none
//   undefined          -                     none
//   Error              -                     nested message of an ErrorRecord
//   class              name: registered name nested message of the class serializer's data
// "Nested message" = the frames encodeMessage makes for that value (frame 0, then its own
// out-of-band payloads), sent as this payload's sub-frames.

import { DeserializationError } from '../errors';
import { binaryTypeNamed, binaryTypeOf } from './binary-types';
import { classSerializerFor, classSerializerNamed } from './class-registry';
import { errorFromRecord, errorToRecord, isErrorRecord } from './error-values';
import type { DeserializeContext, SerializedPayload, SerializerFamily, SubHeader } from './family';

const NO_FRAMES: Uint8Array[] = [];

function serializeObject(value: object, context: { encodeNested(value: unknown): Uint8Array[] }): SerializedPayload | undefined {
  const prototype = Object.getPrototypeOf(value) as object | null;
  const registered = classSerializerFor(prototype);
  if (registered !== undefined) {
    return { header: { type: 'class', name: registered.name }, frames: context.encodeNested(registered.serialize(value)) };
  }
  const binary = binaryTypeOf(prototype);
  if (binary !== undefined) return { header: { type: binary.name }, frames: [binary.toBytes(value)] };
  if (prototype === Map.prototype) {
    const flat: unknown[] = [];
    for (const [k, v] of value as Map<unknown, unknown>) flat.push(k, v);
    return { header: { type: 'Map' }, frames: context.encodeNested(flat) };
  }
  if (prototype === Set.prototype) return { header: { type: 'Set' }, frames: context.encodeNested([...(value as Set<unknown>)]) };
  if (prototype === Date.prototype) return { header: { type: 'Date', value: (value as Date).getTime() }, frames: NO_FRAMES };
  if (value instanceof Error) return { header: { type: 'Error' }, frames: context.encodeNested(errorToRecord(value)) };
  return undefined;
}

function nested(frames: Uint8Array[], context: DeserializeContext, type: string): unknown {
  if (frames.length === 0) throw new DeserializationError(`dd ${type} payload has no frames`);
  return context.decodeNested(frames);
}

function expectFrames(frames: Uint8Array[], n: number, type: string): void {
  if (frames.length !== n) throw new DeserializationError(`dd ${type} payload has ${frames.length} frames, expected ${n}`);
}

export const ddFamily: SerializerFamily = {
  serialize(value, context) {
    switch (typeof value) {
      case 'object':
        return value === null ? undefined : serializeObject(value, context);
      case 'undefined':
        return { header: { type: 'undefined' }, frames: NO_FRAMES };
      case 'bigint':
        return { header: { type: 'BigInt', value: value.toString() }, frames: NO_FRAMES };
      default:
        return undefined;
    }
  },

  deserialize(header: SubHeader, frames: Uint8Array[], context: DeserializeContext) {
    const type = header.type;
    if (typeof type !== 'string') throw new DeserializationError('dd payload without a type');
    switch (type) {
      case 'undefined':
        expectFrames(frames, 0, type);
        return undefined;
      case 'BigInt': {
        expectFrames(frames, 0, type);
        const text = header.value;
        if (typeof text !== 'string' || !/^-?\d{1,100000}$/.test(text)) throw new DeserializationError('dd BigInt needs a decimal string value');
        return BigInt(text);
      }
      case 'Date':
        expectFrames(frames, 0, type);
        if (typeof header.value !== 'number') throw new DeserializationError('dd Date needs a numeric value');
        return new Date(header.value);
      case 'Map': {
        const flat = nested(frames, context, type);
        if (!Array.isArray(flat) || flat.length % 2 !== 0) throw new DeserializationError('dd Map needs a flat list of key/value pairs');
        const map = new Map<unknown, unknown>();
        for (let i = 0; i < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
        return map;
      }
      case 'Set': {
        const items = nested(frames, context, type);
        if (!Array.isArray(items)) throw new DeserializationError('dd Set needs a list of values');
        return new Set(items);
      }
      case 'Error': {
        const record = nested(frames, context, type);
        if (!isErrorRecord(record)) throw new DeserializationError('dd Error payload is not an error record');
        return errorFromRecord(record);
      }
      case 'class': {
        const name = header.name;
        const serializer = typeof name === 'string' ? classSerializerNamed(name) : undefined;
        if (serializer === undefined) throw new DeserializationError(`no class is registered as ${JSON.stringify(name)}`);
        return serializer.deserialize(nested(frames, context, type));
      }
      default: {
        const binary = binaryTypeNamed(type);
        if (binary === undefined) throw new DeserializationError(`unknown dd type ${JSON.stringify(type)}`);
        expectFrames(frames, 1, type);
        return binary.fromBytes(frames[0]!);
      }
    }
  },
};
