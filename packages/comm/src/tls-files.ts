// TLS material read from PEM files, as the command lines take it (dd-scheduler and dd-worker:
// --tls-ca-file, --tls-cert, --tls-key). The text goes into CommOptions as is: PEM strings are
// what Node's TLS accepts, and they survive JSON (a worker process gets its options that way).

import { readFileSync } from 'node:fs';

export interface TlsFiles {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/** How the three files are named in errors: the command line's flags. */
const FLAGS = { caFile: '--tls-ca-file', certFile: '--tls-cert', keyFile: '--tls-key' } as const;

/**
 * The three files' PEM text, or undefined when none is given. One or two of them, or a file
 * that cannot be read, is an Error naming the flag.
 */
export function readTlsFiles(files: TlsFiles): { ca: string; cert: string; key: string } | undefined {
  const given = (Object.keys(FLAGS) as Array<keyof TlsFiles>).filter((f) => files[f] !== undefined);
  if (given.length === 0) return undefined;
  if (given.length < 3) throw new Error(`TLS needs all three of ${FLAGS.caFile}, ${FLAGS.certFile} and ${FLAGS.keyFile}`);
  const read = (f: keyof TlsFiles): string => {
    try {
      return readFileSync(files[f]!, 'utf8');
    } catch (err) {
      throw new Error(`${FLAGS[f]}: cannot read ${files[f]}: ${(err as Error).message}`);
    }
  };
  return { ca: read('caFile'), cert: read('certFile'), key: read('keyFile') };
}
