// The "msgpack" family: plain data (what frame 0 could hold) as one msgpack sub-frame. Used
// for values wrapped in Serialize, so that large plain data can be compressed and split.
// Sub-header: no fields of its own. Sub-frames: exactly one, the msgpack encoding.

import { DeserializationError } from '../errors';
import { decodeMsgpack, encodePlain, isPlainObject, NotPlainError } from '../msgpack-codec';
import type { SerializerFamily, SubHeader } from './family';

function mayBePlain(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return true;
    case 'object':
      return value === null || Array.isArray(value) || isPlainObject(value);
    default:
      return false;
  }
}

export const msgpackFamily: SerializerFamily = {
  serialize(value) {
    // Values taken out of band for not being plain are refused here without an attempt.
    if (!mayBePlain(value)) return undefined;
    try {
      return { header: {}, frames: [encodePlain(value)] };
    } catch (error) {
      if (error instanceof NotPlainError) return undefined;
      throw error;
    }
  },
  deserialize(_header: SubHeader, frames: Uint8Array[]) {
    if (frames.length !== 1) throw new DeserializationError(`a msgpack payload has one frame, not ${frames.length}`);
    return decodeMsgpack(frames[0]!, 'msgpack payload');
  },
};
