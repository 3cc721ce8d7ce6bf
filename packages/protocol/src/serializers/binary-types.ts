// Buffers, typed arrays, DataView and ArrayBuffer in the "dd" family: one sub-frame holding the
// raw bytes, little-endian as in memory on every platform Node supports. Encoding sends a view
// of the value's memory (no copy); decoding returns a view of the frame when its alignment
// allows, otherwise one aligned copy.

import { DeserializationError } from '../errors';

interface TypedArrayConstructor {
  readonly prototype: object;
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): ArrayBufferView;
}

interface BinaryType {
  readonly name: string;
  /** The value's bytes (a view, never a copy). */
  toBytes(value: object): Uint8Array;
  fromBytes(bytes: Uint8Array): unknown;
}

function viewBytes(value: object): Uint8Array {
  const view = value as ArrayBufferView;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * A copy of `bytes` in a fresh ArrayBuffer of its own (offset 0, so aligned for every element
 * size). Not `bytes.slice()`: on a Node Buffer, slice is a view of the same memory.
 */
function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

function typedArrayType(name: string, ctor: TypedArrayConstructor): BinaryType {
  const size = ctor.BYTES_PER_ELEMENT;
  return {
    name,
    toBytes: viewBytes,
    fromBytes(bytes) {
      if (bytes.byteLength % size !== 0) {
        throw new DeserializationError(`${bytes.byteLength} bytes are not a whole number of ${name} elements`);
      }
      const aligned = bytes.byteOffset % size === 0 ? bytes : copyBytes(bytes);
      return new ctor(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
    },
  };
}

// Globals rather than imports: Buffer exists only in Node, Float16Array only in newer runtimes.
const globals = globalThis as unknown as Record<string, TypedArrayConstructor | undefined>;

const TYPED_ARRAY_NAMES = [
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
] as const;

const types: BinaryType[] = [];
for (const name of TYPED_ARRAY_NAMES) {
  const ctor = globals[name];
  if (ctor !== undefined) types.push(typedArrayType(name, ctor));
}

const NodeBuffer = typeof Buffer === 'function' ? Buffer : undefined;
const bufferType: BinaryType = {
  name: 'Buffer',
  toBytes: viewBytes,
  // A runtime without Buffer gets the same bytes as a Uint8Array.
  fromBytes: (bytes) => (NodeBuffer === undefined ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
};
types.push(bufferType);
types.push({
  name: 'DataView',
  toBytes: viewBytes,
  fromBytes: (bytes) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
});
types.push({
  name: 'ArrayBuffer',
  toBytes: (value) => new Uint8Array(value as ArrayBuffer),
  // An ArrayBuffer cannot be a view, so it is always a copy.
  fromBytes: (bytes) => copyBytes(bytes).buffer,
});

const prototypes = new Map<object, BinaryType>();
const byName = new Map<string, BinaryType>();
for (const type of types) byName.set(type.name, type);
for (const name of TYPED_ARRAY_NAMES) {
  const ctor = globals[name];
  if (ctor !== undefined) prototypes.set(ctor.prototype, byName.get(name)!);
}
if (NodeBuffer !== undefined) prototypes.set(NodeBuffer.prototype, bufferType);
prototypes.set(DataView.prototype, byName.get('DataView')!);
prototypes.set(ArrayBuffer.prototype, byName.get('ArrayBuffer')!);

/** The binary type of a value with exactly this prototype (subclasses are not matched). */
export function binaryTypeOf(prototype: object | null): BinaryType | undefined {
  return prototype === null ? undefined : prototypes.get(prototype);
}

export function binaryTypeNamed(name: string): BinaryType | undefined {
  return byName.get(name);
}
