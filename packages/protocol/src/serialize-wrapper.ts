// Serialize marks a value to be sent out of band even if it is plain data (e.g. a large list
// that should be compressed, or a value for a particular family). The receiver gets the bare
// value back, not the wrapper.

export class Serialize<T = unknown> {
  constructor(
    readonly value: T,
    /** Families to try, in order, instead of the encoder's `serializers` option. */
    readonly serializers?: readonly string[],
  ) {}
}

export function toSerialize<T>(value: T, serializers?: readonly string[]): Serialize<T> {
  return new Serialize(value, serializers);
}
