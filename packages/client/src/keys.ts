// Task and data keys. Pure submissions are named `<function name>-<token>`, the token a stable
// hash of the function and its arguments (with Futures replaced by their keys), so the same
// call made twice gives the same key and is computed once.

import { randomBytes } from 'node:crypto';
import { keyFor, tokenize } from '@dd/protocol';
import { functionName, isModuleFunction, type Runnable } from './function-ref';

// Fresh keys for pure: false are hot in map(): a random 16-hex-digit process prefix plus a
// 16-hex-digit counter is unique across clients and far cheaper than randomBytes per key.
const TOKEN_PREFIX = randomBytes(8).toString('hex');
let tokenCounter = Math.floor(Math.random() * 0x10000);

/** 32 hex digits, unique per call (random per process, then counting). */
export function randomToken(): string {
  return TOKEN_PREFIX + (tokenCounter++).toString(16).padStart(16, '0');
}

/**
 * The key of a pure call: @dd/protocol's keyFor for functions by source (name + token of the
 * source and the arguments, Futures already replaced by key references); for module functions
 * the token covers specifier, export name and arguments.
 */
export function taskKey(fn: Runnable, wireArgs: readonly unknown[], name?: string): string {
  if (isModuleFunction(fn)) {
    return `${name ?? functionName(fn)}-${tokenize({ module: fn.module, export: fn.export }, ...wireArgs)}`;
  }
  if (name !== undefined) return `${name}-${tokenize(fn, ...wireArgs)}`;
  return keyFor(fn as (...args: never[]) => unknown, wireArgs);
}

/** The key of scattered data: `<type name>-<token of the value>`. */
export function dataKey(value: unknown): string {
  return `${typeName(value)}-${tokenize(value)}`;
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as object).constructor?.name;
  return typeof name === 'string' && name !== '' ? name.replace(/[^A-Za-z0-9_$]/g, '_') : 'object';
}
