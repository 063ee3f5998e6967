import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SERVICE_ENV, SERVICE_NODE_FLAGS, startServiceProcess } from './service-process.harness';

const ROOT = resolve(__dirname, '../../../..');
const read = (path: string) => readFileSync(resolve(ROOT, path), 'utf8');

/**
 * Tests and benches start the services with SERVICE_NODE_FLAGS and SERVICE_ENV; the image and scripts/up.sh must
 * start them the same way, or the bench measures a process nobody runs.
 */
describe('the services run with the same flags and environment everywhere they are started', () => {
  const starters = { Dockerfile: read('Dockerfile'), 'scripts/up.sh': read('scripts/up.sh') };

  it.each(Object.entries(starters))('%s passes every runtime flag', (_name, text) => {
    expect(SERVICE_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of SERVICE_NODE_FLAGS) expect(text).toContain(flag);
  });

  it.each(Object.entries(starters))('%s sets every runtime variable', (_name, text) => {
    for (const [variable, value] of Object.entries(SERVICE_ENV)) expect(text).toContain(`${variable}=${value}`);
  });

  it('node accepts the image\'s NODE_OPTIONS (a flag it refuses there, like --heap-growing-percent, stops every service)', () => {
    const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(starters.Dockerfile)?.[1];
    expect(nodeOptions).toBeDefined();
    const run = spawnSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('node refuses a V8 flag such as --heap-growing-percent in NODE_OPTIONS (why the image passes it on the command line)', () => {
    const run = spawnSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: '--heap-growing-percent=200' }, encoding: 'utf8' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('not allowed in NODE_OPTIONS');
  });
});

/**
 * SERVICE_LOG_DIR copies each service's output to a file as it comes; a directory that does not exist yet is created
 * (it used to throw ENOENT from the output handler: the bench crashed and left its service processes running).
 */
describe('SERVICE_LOG_DIR', () => {
  const previous = process.env.SERVICE_LOG_DIR;
  const root = mkdtempSync(join(tmpdir(), 'service-log-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  afterEach(() => {
    if (previous === undefined) delete process.env.SERVICE_LOG_DIR;
    else process.env.SERVICE_LOG_DIR = previous;
  });

  it('creates the directory it names and writes the output of a process that fails to start into it', async () => {
    const dir = join(root, 'not', 'there', 'yet');
    process.env.SERVICE_LOG_DIR = dir;
    const start = startServiceProcess('no-such-app', {}, 10_000, '/health/live', { kind: 'compiled', node: process.execPath });
    await expect(start).rejects.toThrow(/no-such-app exited with 1 before \/health\/live answered 200/);
    const files = readdirSync(dir);
    expect(files).toEqual([expect.stringMatching(/^no-such-app-\d+\.log$/)]);
    expect(readFileSync(join(dir, files[0]), 'utf8')).toContain('Cannot find module');
  });
});
