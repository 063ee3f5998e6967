import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SERVICE_NODE_FLAGS } from './service-process.harness';

const ROOT = resolve(__dirname, '../../../..');
const read = (path: string) => readFileSync(resolve(ROOT, path), 'utf8');

/**
 * Tests and benches start the services with SERVICE_NODE_FLAGS; the image and scripts/up.sh must start them the
 * same way, or the bench measures a process nobody runs.
 */
describe('the services run with the same runtime flags everywhere they are started', () => {
  const starters = { Dockerfile: read('Dockerfile'), 'scripts/up.sh': read('scripts/up.sh') };

  it.each(Object.keys(starters))('%s passes every runtime flag', (name) => {
    expect(SERVICE_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of SERVICE_NODE_FLAGS) expect(starters[name as keyof typeof starters]).toContain(flag);
  });
});
