// Serializer families: named strategies that turn one out-of-band value into a sub-header and
// sub-frames and back. The family name travels in the sub-header, so a reader picks the same
// family by name; users add families with registerFamily.

import { SerializationError, UnknownSerializerError } from '../errors';

/** Fields of a sub-header that belong to the protocol; a family must not set them. */
export const RESERVED_HEADER_FIELDS: ReadonlySet<string> = new Set(['serializer', 'compression', 'count', 'lengths', 'splits']);

/** What a family makes of one value: msgpack-able header fields plus raw frames. */
export interface SerializedPayload {
  /** Family-specific header fields (plain msgpack data, none of RESERVED_HEADER_FIELDS). */
  header: Record<string, unknown>;
  /** Raw frames; views into the value's memory are welcome (they are sent without copies). */
  frames: Uint8Array[];
}

/** Lets a family encode a nested value as a whole dd message (frame 0 plus out-of-band frames). */
export interface SerializeContext {
  encodeNested(value: unknown): Uint8Array[];
}

/** Lets a family decode frames made by SerializeContext.encodeNested, under the same limits. */
export interface DeserializeContext {
  decodeNested(frames: Uint8Array[]): unknown;
}

/** The sub-header as a family's deserialize receives it (reserved fields included). */
export type SubHeader = Readonly<Record<string, unknown>> & {
  readonly serializer: string;
  readonly compression: readonly (string | null)[];
  readonly count: number;
};

export interface SerializerFamily {
  /** The payload for `value`, or undefined when this family does not handle such values. */
  serialize(value: unknown, context: SerializeContext): SerializedPayload | undefined;
  /** The value back from its header and (decompressed, joined) frames. */
  deserialize(header: SubHeader, frames: Uint8Array[], context: DeserializeContext): unknown;
}

const families = new Map<string, SerializerFamily>();

export interface RegisterFamilyOptions {
  /** Replace a family already registered under this name (built-ins included). */
  override?: boolean;
}

export function registerFamily(name: string, family: SerializerFamily, options?: RegisterFamilyOptions): void {
  if (typeof name !== 'string' || name === '') throw new TypeError('a serializer family needs a non-empty name');
  if (families.has(name) && options?.override !== true) {
    throw new SerializationError(`serializer family ${JSON.stringify(name)} is already registered`);
  }
  families.set(name, family);
}

export function unregisterFamily(name: string): boolean {
  return families.delete(name);
}

export function findFamily(name: string): SerializerFamily | undefined {
  return families.get(name);
}

/** The family for a name read from a sub-header; UnknownSerializerError if there is none. */
export function familyForDecoding(name: string): SerializerFamily {
  const family = families.get(name);
  if (family === undefined) throw new UnknownSerializerError(name);
  return family;
}

export function registeredFamilies(): string[] {
  return [...families.keys()];
}
