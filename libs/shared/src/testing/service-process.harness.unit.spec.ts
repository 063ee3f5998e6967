import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SERVICE_ENV, SERVICE_NODE_FLAGS } from './service-process.harness';

const ROOT = resolve(__dirname, '../../../..');
const read = (path: string) => readFileSync(resolve(ROOT, path), 'utf8');

/**
 * Tests and benches start the services with SERVICE_NODE_FLAGS and SERVICE_ENV; the image and scripts/up.sh must
 * start them the same way, or the bench measures a process nobody runs.
 */
describe('the services run with the same flags and environment everywhere they are started', () => {
  const starters = { Dockerfile: read('Dockerfile'), 'scripts/up.sh': read('scripts/up.sh') };

  it.each(Object.keys(starters))('%s passes every runtime flag', (name) => {
    expect(SERVICE_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of SERVICE_NODE_FLAGS) expect(starters[name as keyof typeof starters]).toContain(flag);
  });

  it.each(Object.keys(starters))('%s sets every runtime variable', (name) => {
    for (const [variable, value] of Object.entries(SERVICE_ENV)) expect(starters[name as keyof typeof starters]).toContain(`${variable}=${value}`);
  });

  it('NODE_OPTIONS in the image holds only flags Node accepts there (a V8 flag it refuses stops every service)', () => {
    const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(starters.Dockerfile)?.[1];
    expect(nodeOptions).toBe('--max-semi-space-size=32');
  });
});
