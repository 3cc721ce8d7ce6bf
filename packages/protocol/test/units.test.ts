import { InvalidQuantityError, formatBytes, parseBytes, parseResources, parseTimedelta } from '../src';

describe('units', () => {
  test.each([
    ['4GB', 4e9], ['512MiB', 512 * 2 ** 20], ['1e9', 1e9], [' 10 kb ', 10_000], [1234, 1234], ['2.5 GiB', 2.5 * 2 ** 30],
  ])('parseBytes(%p)', (text, bytes) => expect(parseBytes(text)).toBe(bytes));

  test.each([
    ['30s', 30_000], ['5 minutes', 300_000], ['100ms', 100], ['2h', 7_200_000], [2.5, 2500], ['1.5', 1500],
  ])('parseTimedelta(%p)', (text, ms) => expect(parseTimedelta(text)).toBe(ms));

  test('bad quantities are named errors that quote the input', () => {
    expect(() => parseBytes('lots')).toThrow(InvalidQuantityError);
    expect(() => parseBytes('4 parsecs')).toThrow(/unknown byte unit "parsecs"/);
    expect(() => parseTimedelta('-3s')).toThrow(/negative/);
    expect(() => parseTimedelta('3 fortnights')).toThrow(InvalidQuantityError);
  });

  test('resources', () => {
    expect(parseResources('GPU=2 MEM=10e9')).toEqual({ GPU: 2, MEM: 1e10 });
    expect(parseResources('a=1,b=0.5')).toEqual({ a: 1, b: 0.5 });
    expect(() => parseResources('GPU')).toThrow(/NAME=AMOUNT/);
  });

  test('formatBytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.5 GiB');
    expect(formatBytes(240 * 2 ** 20)).toBe('240 MiB');
    expect(formatBytes(-1)).toBe('');
    expect(formatBytes(Number.NaN)).toBe('');
  });
});
