// One Jest configuration, three projects: `unit` needs no infrastructure; `int` and `e2e` talk to the real
// Kafka broker and PostgreSQL started by scripts/infra.sh (integration specs, then end-to-end specs).
const fs = require('node:fs');
const swc = JSON.parse(fs.readFileSync(`${__dirname}/.swcrc`, 'utf8'));
const { compilerOptions } = require('./tsconfig.base.json');

const moduleNameMapper = Object.fromEntries(
  Object.entries(compilerOptions.paths).map(([alias, [target]]) => [`^${alias}$`, `<rootDir>/${target}`]),
);
const common = {
  rootDir: __dirname,
  transform: {
    '^.+\\.ts$': ['@swc/jest', { ...swc, swcrc: false }],
    // @fastify/static (the OpenAPI page's assets) depends on an ES-module-only content-disposition, which Node 20
    // requires natively but Jest does not: that one package is compiled to CommonJS for the tests.
    // jose (portal tokens) is ES-module only too.
    '/(content-disposition|jose)/.+\\.js$': ['@swc/jest', { ...swc, swcrc: false, jsc: { target: 'es2022' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!((@fastify/static/node_modules/)?content-disposition|jose)/)'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper,
  testEnvironment: 'node',
  // jest.setup.js: the compiled validation paths are checked against class-transformer and class-validator on every value.
  setupFiles: ['reflect-metadata', '<rootDir>/jest.setup.js'],
  modulePathIgnorePatterns: ['<rootDir>/dist', '<rootDir>/.cache'],
};

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs,chaos}/**/*.unit.spec.ts'] },
    // One part of the system against the real broker and database (an adapter, a repository, one module over HTTP).
    {
      ...common,
      displayName: 'int',
      testMatch: ['<rootDir>/{apps,libs}/**/*.int.spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/jest.int.setup.js'],
    },
    // Whole services as a user or operator meets them: real processes, HTTP, Kafka, PostgreSQL, SMTP, kill -9.
    {
      ...common,
      displayName: 'e2e',
      // chaos/: the fault run of the whole system at its CI size (CHAOS_SHORT=1).
      testMatch: ['<rootDir>/{apps,libs,chaos}/**/*.e2e.spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/jest.int.setup.js'],
    },
  ],
};
