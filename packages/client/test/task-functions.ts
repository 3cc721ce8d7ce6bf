// Task functions the client tests submit. They travel to workers by source, so each is
// self-contained (no closure variables).

export function inc(x: number): number {
  return x + 1;
}
export function add(a: number, b: number): number {
  return a + b;
}
export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
/** Resolves with `value` after `ms` (an async task that takes a while). */
export async function sleepThen<T>(ms: number, value: T): Promise<T> {
  await new Promise((r) => setTimeout(r, ms));
  return value;
}
