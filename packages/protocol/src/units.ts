// Parsing of the human-friendly quantities operators type on command lines and in config:
// byte sizes ("4GB", "512 MiB", 1e9) and durations ("30s", "5 minutes", "100ms", 2.5).
// Pure and dependency-free so every package and third-party tool reads them the same way.

import { DdError } from './errors';

export class InvalidQuantityError extends DdError {
  override readonly code: string = 'DD_ERR_INVALID_QUANTITY';
}

const BYTE_UNITS: Record<string, number> = {
  b: 1, '': 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, pb: 1e15,
  k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, pib: 2 ** 50,
};

const TIME_UNITS_MS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000, '': 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  us: 1e-3, microsecond: 1e-3, microseconds: 1e-3,
};

const QUANTITY = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*([a-z]*)\s*$/i;

function split(text: string, what: string): [number, string] {
  const m = QUANTITY.exec(text);
  if (!m) throw new InvalidQuantityError(`cannot read ${JSON.stringify(text)} as ${what}`);
  return [Number(m[1]), m[2]!.toLowerCase()];
}

/** Bytes from a number or a string such as "4GB", "512MiB", "1e9". Decimal units are powers of 1000. */
export function parseBytes(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InvalidQuantityError(`invalid byte count ${value}`);
    return Math.floor(value);
  }
  const [n, unit] = split(value, 'a byte size');
  const factor = BYTE_UNITS[unit];
  if (factor === undefined) throw new InvalidQuantityError(`unknown byte unit ${JSON.stringify(unit)} in ${JSON.stringify(value)}`);
  if (n < 0) throw new InvalidQuantityError(`negative byte size ${JSON.stringify(value)}`);
  return Math.floor(n * factor);
}

/** Milliseconds from a number of seconds or a string such as "30s", "5 minutes", "100ms". */
export function parseTimedelta(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InvalidQuantityError(`invalid duration ${value}`);
    return value * 1000;
  }
  const [n, unit] = split(value, 'a duration');
  const factor = TIME_UNITS_MS[unit];
  if (factor === undefined) throw new InvalidQuantityError(`unknown time unit ${JSON.stringify(unit)} in ${JSON.stringify(value)}`);
  if (n < 0) throw new InvalidQuantityError(`negative duration ${JSON.stringify(value)}`);
  return n * factor;
}

/**
 * Bytes as people read them in logs, pages and reports: "512 B", "1.5 MiB", "240 MiB"
 * (one decimal below 100). Not a number or negative: an empty string.
 */
export function formatBytes(n: number): string {
  if (!(n >= 0)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

/** Abstract resources from "GPU=2 MEM=10e9" (spaces or commas between entries). */
export function parseResources(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(/[\s,]+/).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq);
    const amount = Number(part.slice(eq + 1));
    if (eq <= 0 || !Number.isFinite(amount) || amount < 0) {
      throw new InvalidQuantityError(`cannot read resource ${JSON.stringify(part)}: expected NAME=AMOUNT, e.g. GPU=2`);
    }
    out[name] = amount;
  }
  return out;
}
