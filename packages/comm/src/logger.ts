// The minimal logging surface comm needs. Servers log peer misbehaviour and handler failures
// here instead of throwing, so a bad peer never takes the process down.

export interface Logger {
  debug(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

const noop = (): void => {};

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Warnings and errors to stderr; debug/info only with DD_DEBUG set. */
export function consoleLogger(name: string): Logger {
  const verbose = process.env['DD_DEBUG'] !== undefined && process.env['DD_DEBUG'] !== '';
  const prefix = `[${name}]`;
  return {
    debug: verbose ? (m, ...d) => console.debug(prefix, m, ...d) : noop,
    info: verbose ? (m, ...d) => console.info(prefix, m, ...d) : noop,
    warn: (m, ...d) => console.warn(prefix, m, ...d),
    error: (m, ...d) => console.error(prefix, m, ...d),
  };
}
