// Task keys as names: the prefix and group the reference derives from a key (`key_split`),
// shared by the scheduler (task prefixes and groups), the client (progress per prefix) and
// anything else that shows tasks by kind.

import type { Key } from './messages';

/** A run of letters/underscores that is not an 8+ char hex token (the reference's key_split rule). */
function isNameWord(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  let hex = to - from >= 8;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
    if (!alpha) return false;
    if (hex && !((c >= 97 && c <= 102) || (c >= 65 && c <= 70))) hex = false;
  }
  return !hex;
}

/**
 * The prefix of a key, as the reference's `key_split`: `inc-<hash>` -> `inc`,
 * `load-file-3` -> `load-file`; a tuple key `["x-abc",0]` uses its first element.
 */
export function keySplit(key: Key): string {
  const s = tupleName(key) ?? key;
  let end = s.indexOf('-');
  if (end < 0) return s === '' ? 'data' : s;
  let cut = end;
  while (end >= 0) {
    const next = s.indexOf('-', end + 1);
    const stop = next < 0 ? s.length : next;
    if (!isNameWord(s, end + 1, stop)) break;
    cut = stop;
    end = next;
  }
  const out = s.slice(0, cut);
  return out === '' ? 'data' : out;
}

/** The group of a key: a tuple key's name (`["x-abc",0]` -> `x-abc`), else its prefix. */
export function keyGroup(key: Key): string {
  return tupleName(key) ?? keySplit(key);
}

/**
 * The first element of a tuple key (`["x-abc",0]` -> `x-abc`), or undefined for other keys.
 * The common form (a string without escapes, then a comma) is read without JSON.parse, which
 * cost a parse and an array per key, twice per task of a graph.
 */
function tupleName(key: Key): string | undefined {
  if (key.charCodeAt(0) !== 91 /* [ */) return undefined;
  if (key.charCodeAt(1) === 34 /* " */) {
    const close = key.indexOf('"', 2);
    const next = key.charCodeAt(close + 1);
    if (close > 0 && key.lastIndexOf('\\', close) < 2 && (next === 44 /* , */ || next === 93 /* ] */) && key.charCodeAt(key.length - 1) === 93) {
      return key.slice(2, close);
    }
  }
  try {
    const parsed: unknown = JSON.parse(key);
    if (Array.isArray(parsed) && typeof parsed[0] === 'string') return parsed[0];
  } catch {
    /* not a tuple key */
  }
  return undefined;
}
