import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTlsFiles } from '../src/index';

describe('readTlsFiles (the command lines\' --tls-* options)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dd-tls-files-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  test('none given: no TLS; all three: their PEM text', () => {
    expect(readTlsFiles({})).toBeUndefined();
    const files = { caFile: file('ca.pem', 'CA'), certFile: file('c.pem', 'CERT'), keyFile: file('k.pem', 'KEY') };
    expect(readTlsFiles(files)).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY' });
  });

  test('one or two of them, or a file that cannot be read, is an error naming the flag', () => {
    expect(() => readTlsFiles({ caFile: file('ca2.pem', 'CA') })).toThrow('TLS needs all three of --tls-ca-file, --tls-cert and --tls-key');
    expect(() => readTlsFiles({ caFile: join(dir, 'missing.pem'), certFile: file('c2.pem', 'C'), keyFile: file('k2.pem', 'K') })).toThrow(/^--tls-ca-file: cannot read .*missing\.pem/);
  });
});
