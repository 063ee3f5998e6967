import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Every TypeScript file is named `<subject>.<role>.ts` with a role from the table in docs/architecture.md
 * ("File names"), the one place the list lives; tests are `<subject>.(unit|int|e2e).spec.ts`.
 */
const root = resolve(__dirname, '../../..');

/** The roles of the "File names" table: its rows are "| `role` | what it holds |". */
function documentedRoles(): Set<string> {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('File names'));
  if (!section) throw new Error('docs/architecture.md has no "## File names" section');
  return new Set([...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]));
}

const SEGMENT = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const TEST = /^(.+)\.(unit|int|e2e)\.spec\.ts$/;
const MIGRATION = /^\d{13}-[a-z0-9]+(-[a-z0-9]+)*\.ts$/;

/** Why `path` breaks the naming rule, or undefined when it follows it. */
function namingProblem(path: string, roles: ReadonlySet<string>): string | undefined {
  const parts = path.split('/');
  const name = parts[parts.length - 1];
  if (name === 'index.ts' || name === 'main.ts') return undefined;
  if (parts.includes('migrations') && MIGRATION.test(name)) return undefined;
  const test = TEST.exec(name);
  const segments = (test ? test[1] : name.replace(/\.ts$/, '')).split('.');
  const bad = segments.find((s) => !SEGMENT.test(s));
  if (bad !== undefined) return `"${bad}" is not kebab-case`;
  if (test) return undefined;
  if (name.endsWith('.spec.ts')) return 'a test is <subject>.unit|int|e2e.spec.ts';
  if (segments.length < 2) return 'no role (<subject>.<role>.ts)';
  const role = segments[segments.length - 1];
  return roles.has(role) ? undefined : `role "${role}" is not in docs/architecture.md (File names)`;
}

/** Tracked .ts files (git); outside a checkout, every .ts file but node_modules, .cache, dist and .git. */
function typeScriptFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z', '--', '*.ts'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  } catch {
    const skipped = /(^|\/)(node_modules|\.cache|dist|\.git)\//;
    return readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts') && !skipped.test(file));
  }
}

describe('file names', () => {
  const roles = documentedRoles();

  it('the documented list is short and has the roles the code uses most', () => {
    expect(roles.size).toBeGreaterThan(20);
    expect(roles.size).toBeLessThanOrEqual(45);
    for (const role of ['module', 'controller', 'handler', 'dto', 'entity', 'config', 'errors', 'contract', 'harness']) expect(roles).toContain(role);
  });

  it('every tracked TypeScript file is <subject>.<role>.ts with a documented role', () => {
    const files = typeScriptFiles().filter((f) => !f.split('/').some((p) => p === 'node_modules' || p === '.cache'));
    expect(files.length).toBeGreaterThan(200);
    const problems = files.flatMap((f) => {
      const problem = namingProblem(f, roles);
      return problem ? [`${f}: ${problem}`] : [];
    });
    expect(problems).toEqual([]);
  });

  it.each([
    ['apps/ledger/src/grant/grant.http.controller.ts', undefined],
    ['libs/contracts/src/messages/ledger-events.v2.contract.ts', undefined],
    ['apps/ledger/test/usage-to-balance.e2e.spec.ts', undefined],
    ['libs/money/src/money.model.unit.spec.ts', undefined],
    ['apps/ledger/src/read-models/migrations/1764300000000-create-read-models.ts', undefined],
    ['libs/shared/src/index.ts', undefined],
    ['libs/money/src/money.ts', 'no role (<subject>.<role>.ts)'],
    ['libs/pricing/src/usage.pricer.ts', 'role "pricer" is not in docs/architecture.md (File names)'],
    ['libs/pricing/src/pricing.error.ts', 'role "error" is not in docs/architecture.md (File names)'],
    ['apps/ledger/test/expiry.spec.ts', 'a test is <subject>.unit|int|e2e.spec.ts'],
    ['apps/ledger/src/database/1764500000000-expiries.ts', 'no role (<subject>.<role>.ts)'],
    ['apps/ledger/src/read-models/balance/balanceRead.repository.ts', '"balanceRead" is not kebab-case'],
  ])('%s → %s', (path, problem) => {
    expect(namingProblem(path, roles)).toEqual(problem);
  });
});
