// Boundaries between projects are enforced here (tags in each project.json):
//   type:kernel    money (exact micro-credit values) and instant (what a timestamp on the wire is), used by every project
//   type:domain    pure code: may use only other domain libs, and never a framework or I/O client
//   type:contracts wire formats: depends on the kernel only
//   type:shared    config, logging, errors, test helpers
//   type:infra     event store and Kafka adapters
//   type:ledger    the ledger's own code that its service and the operator CLI share (event codec, read models)
//   type:app       the four services and the operator CLI: may use libs, never another app
//   type:frontend  apps/credits-page, in browsers: money (kernel) and the API's generated types (client) only
//   type:client    libs/client, published as @tally/client for product services: stands alone (no other project);
//                  only its tests use the test helpers, and only tests (and examples) elsewhere use it
const nx = require('@nx/eslint-plugin');

const frameworks = [
  '@nestjs/*', 'typeorm', 'pg', 'pg-*', 'kafkajs', '@eventstore/*', 'fastify', '@fastify/*', 'dataloader', 'nestjs-pino', 'pino', 'pino-*',
  'nodemailer', 'fs', 'node:fs', 'http', 'node:http', 'net', 'node:net', 'child_process', 'node:child_process',
];

const depConstraints = [
  { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain', 'type:kernel'], bannedExternalImports: frameworks },
  { sourceTag: 'type:kernel', onlyDependOnLibsWithTags: [], bannedExternalImports: frameworks },
  { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:kernel'], bannedExternalImports: frameworks },
  { sourceTag: 'type:shared', onlyDependOnLibsWithTags: ['type:contracts', 'type:kernel'] },
  { sourceTag: 'type:infra', onlyDependOnLibsWithTags: ['type:contracts', 'type:kernel', 'type:shared', 'type:infra'] },
  { sourceTag: 'type:ledger', onlyDependOnLibsWithTags: ['type:contracts', 'type:kernel', 'type:domain', 'type:shared', 'type:infra', 'type:ledger'] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:contracts', 'type:kernel', 'type:domain', 'type:shared', 'type:infra', 'type:ledger'] },
  { sourceTag: 'type:client', onlyDependOnLibsWithTags: [], bannedExternalImports: frameworks },
  // The credits page runs in browsers: money arithmetic (kernel) and the API's generated types (client), no server code.
  { sourceTag: 'type:frontend', onlyDependOnLibsWithTags: ['type:kernel', 'type:client'], bannedExternalImports: frameworks },
];
// Tests of the services may use the client (the e2e tests call the API through it), and the client's own tests
// the test helpers that start the services; the published client code keeps the constraint above.
const testDepConstraints = depConstraints.map((constraint) =>
  constraint.sourceTag === 'type:app' ? { ...constraint, onlyDependOnLibsWithTags: [...constraint.onlyDependOnLibsWithTags, 'type:client'] }
  : constraint.sourceTag === 'type:client' ? { ...constraint, onlyDependOnLibsWithTags: ['type:shared', 'type:infra', 'type:contracts', 'type:kernel'], bannedExternalImports: [] }
  // The credits page's browser tests start the real services (test helpers, Kafka) and report usage with the client.
  : constraint.sourceTag === 'type:frontend' ? { ...constraint, onlyDependOnLibsWithTags: ['type:kernel', 'type:client', 'type:shared', 'type:infra', 'type:contracts'], bannedExternalImports: [] }
  : constraint,
);

module.exports = [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/node_modules', '**/dist', '.cache', '.nx', 'coverage', '**/*.js'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allowCircularSelfDependency: false,
          depConstraints,
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      // Config and DTO classes keep explicit types: they become reflected metadata that validation relies on.
      '@typescript-eslint/no-inferrable-types': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'Read configuration through the app config class (libs/shared config), not process.env.' },
        { selector: "CallExpression[callee.name='parseFloat']", message: 'Money is never a float: use bigint micro-credits.' },
      ],
    },
  },
  {
    // The ledger's write side (its use cases and what they share) never imports its read side (read-models/):
    // dependencies run write side -> shared kernel, read side -> its own + the account kernel + contracts.
    // Only the composition root (ledger.module.ts, main.ts) wires both; tests may read across.
    files: [
      'apps/ledger/src/{accounts,record-usage,apply-subscription-event,authorize,release-hold,purchase,grant,command-consumer,expiry,relay,workers,config,database}/**/*.ts',
      'apps/ledger/src/ledger.errors.ts',
      'apps/ledger/src/infrastructure.module.ts',
    ],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/read-models', '**/read-models/**', '@tally/ledger-read-models'], message: 'The ledger write side must not import the read side (read-models/, @tally/ledger-read-models).' }] },
      ],
    },
  },
  {
    // Tests: testDepConstraints (above).
    files: ['**/*.spec.ts', '**/test/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allowCircularSelfDependency: false,
          depConstraints: testDepConstraints,
        },
      ],
    },
  },
  {
    // Tests, scripts and benchmarks may read the environment (they are not services).
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts', 'chaos/**/*.ts', 'libs/shared/src/config/**/*.ts', 'libs/shared/src/testing/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // Tests read arbitrary JSON responses; production code may not use `any`.
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
];
