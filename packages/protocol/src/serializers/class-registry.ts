// User classes registered with registerSerializer. Their instances travel through the "dd"
// family as {type: "class", name} plus the nested encoding of what `serialize` returns.

import { SerializationError } from '../errors';

export interface ClassSerializer<T extends object = object, Data = unknown> {
  /** Stable wire name of the class, the same in every process. */
  name: string;
  /** Any value dd can encode (plain data, Buffers, Maps, other registered classes, ...). */
  serialize(instance: T): Data;
  deserialize(data: Data): T;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Constructor<T> = abstract new (...args: any[]) => T;

const byPrototype = new Map<object, ClassSerializer>();
const byName = new Map<string, ClassSerializer>();

/**
 * Registers how instances of exactly `ctor` (not of its subclasses) are serialized. Replaces an
 * earlier registration of the same class or name.
 */
export function registerSerializer<T extends object, Data>(ctor: Constructor<T>, serializer: ClassSerializer<T, Data>): void {
  if (typeof serializer.name !== 'string' || serializer.name === '') {
    throw new SerializationError('registerSerializer needs a non-empty name');
  }
  const prototype = ctor.prototype as object;
  const sameClass = byPrototype.get(prototype);
  if (sameClass !== undefined) byName.delete(sameClass.name);
  const sameName = byName.get(serializer.name);
  if (sameName !== undefined) {
    for (const [proto, s] of byPrototype) if (s === sameName) byPrototype.delete(proto);
  }
  byPrototype.set(prototype, serializer as ClassSerializer);
  byName.set(serializer.name, serializer as ClassSerializer);
}

export function unregisterSerializer(ctor: Constructor<unknown>): boolean {
  const serializer = byPrototype.get(ctor.prototype as object);
  if (serializer === undefined) return false;
  byPrototype.delete(ctor.prototype as object);
  byName.delete(serializer.name);
  return true;
}

export function classSerializerFor(prototype: object | null): ClassSerializer | undefined {
  return prototype === null ? undefined : byPrototype.get(prototype);
}

export function classSerializerNamed(name: string): ClassSerializer | undefined {
  return byName.get(name);
}
