// One Jest configuration, two projects: `unit` needs no infrastructure; `int` talks to the real
// Kafka broker and PostgreSQL started by scripts/infra.sh (integration and end-to-end specs).
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
    '/content-disposition/.+\\.js$': ['@swc/jest', { ...swc, swcrc: false, jsc: { target: 'es2022' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@fastify/static/node_modules/)?content-disposition/)'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper,
  testEnvironment: 'node',
  setupFiles: ['reflect-metadata'],
  modulePathIgnorePatterns: ['<rootDir>/dist', '<rootDir>/.cache'],
};

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.unit.spec.ts'] },
    {
      ...common,
      displayName: 'int',
      testMatch: ['<rootDir>/{apps,libs}/**/*.{int,e2e}.spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/jest.int.setup.js'],
    },
  ],
};
