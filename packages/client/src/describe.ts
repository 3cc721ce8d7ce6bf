// How error messages name a value the caller passed where something else was expected.

/** Its class for objects (`Array`, `Map`, `Object`), else its typeof. */
export function typeOfValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

/** The value itself when it is a primitive (strings quoted, long ones cut), else its type. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined || value === null) return String(value);
  return typeOfValue(value);
}
