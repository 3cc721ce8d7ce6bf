// One jest run over every package. Tests import sibling packages from their TypeScript
// sources (so a test never sees a stale build and classes have one identity); code that must
// run as JavaScript in another thread or process (executor threads, the binaries) uses dist/,
// which `npm test` builds first.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/apps', '<rootDir>/tools'],
  testMatch: ['**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, sourceMaps: 'inline' }],
  },
  moduleNameMapper: {
    '^@dd/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
    '^@dd/([a-z-]+)/internal$': '<rootDir>/packages/$1/src/internal.ts',
  },
  testTimeout: 30000,
  maxWorkers: 2,
};
