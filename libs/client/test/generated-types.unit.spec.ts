import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../..');

/** libs/client's types are generated from docs/openapi.json (npm run client:generate) and committed. */
describe('the generated API types', () => {
  it('are what `npm run client:generate` writes from docs/openapi.json today (run it and commit the file when this fails)', () => {
    // The generator's CLI without -o prints the file it would write.
    const fresh = execFileSync(process.execPath, [resolve(root, 'node_modules/openapi-typescript/bin/cli.js'), 'docs/openapi.json'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const committed = readFileSync(resolve(root, 'libs/client/src/tally-api.generated.ts'), 'utf8');
    expect(committed).toBe(fresh);
  }, 60_000);
});
