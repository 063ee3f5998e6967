import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitFor } from '../src/testing/wait-for.harness';

/**
 * scripts/supervise.sh keeps a service running under scripts/up.sh. A real bash process supervises a real node
 * process: a crash and a kill -9 are followed by a restart that is logged; SIGTERM to the supervisor is a stop
 * that reaches the service and is not followed by a restart.
 */
describe('scripts/supervise.sh', () => {
  const script = resolve(__dirname, '../../../scripts/supervise.sh');
  let run: string;
  let supervisor: ChildProcess | undefined;

  // A stand-in service: counts its starts in a file, exits with status 3 on its first start (a crash at boot),
  // then stays up, and on SIGTERM writes "graceful" and exits 0, as the services' shutdown hooks do. Its SIGTERM
  // handler is installed before it counts the start: the test signals as soon as it sees the count, and a SIGTERM
  // that arrived before the handler would kill it by default (CI at 3d1787d failed that way, with no "graceful").
  const service = `
    const fs = require('node:fs');
    process.on('SIGTERM', () => { fs.writeFileSync('graceful', String(process.pid)); process.exit(0); });
    const starts = Number(fs.existsSync('starts') ? fs.readFileSync('starts', 'utf8') : 0) + 1;
    fs.writeFileSync('starts', String(starts));
    console.log(JSON.stringify({ msg: 'started', starts, pid: process.pid }));
    if (starts === 1) process.exit(3);
    setInterval(() => {}, 1000);
  `;
  const starts = (): number => (existsSync(join(run, 'starts')) ? Number(readFileSync(join(run, 'starts'), 'utf8')) : 0);
  const childPid = (): number | undefined => {
    const file = join(run, 'svc.child.pid');
    return existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
  };
  const supervisorLines = (): Record<string, unknown>[] =>
    readFileSync(join(run, 'svc.log'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"supervisor":true'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  beforeEach(() => {
    run = mkdtempSync(join(tmpdir(), 'supervise-'));
  });
  afterEach(() => {
    if (supervisor?.pid && alive(supervisor.pid)) supervisor.kill('SIGKILL');
    const pid = childPid();
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(run, { recursive: true, force: true });
  });

  it('restarts a service that crashed or was killed, logs each restart, and stops it gracefully on SIGTERM', async () => {
    const started = spawn('bash', [script, 'svc', run, '--', process.execPath, '-e', service], { cwd: run, stdio: 'ignore' });
    supervisor = started;
    const exited = new Promise<number | null>((done) => started.once('exit', (code) => done(code)));

    // The crash at boot is followed by a restart after 1 s.
    const second = await waitFor(() => starts() === 2 && childPid(), 10_000);
    expect(supervisorLines()).toEqual([expect.objectContaining({ service: 'svc', level: 40, msg: 'exited; restarting', exitStatus: 3, restartInSeconds: 1, restarts: 1 })]);

    // kill -9 of the running service: restarted again, after the next (doubled) wait, as a new process.
    await waitFor(() => alive(second), 5_000);
    process.kill(second, 'SIGKILL');
    const third = await waitFor(() => starts() === 3 && childPid(), 10_000);
    expect(third).not.toBe(second);
    expect(supervisorLines()[1]).toEqual(expect.objectContaining({ exitStatus: 137, signal: 'KILL', restartInSeconds: 2, restarts: 2 }));

    // SIGTERM to the supervisor: the service gets SIGTERM and exits 0; the supervisor exits 0 and restarts nothing.
    await waitFor(() => alive(third), 5_000);
    started.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(readFileSync(join(run, 'graceful'), 'utf8')).toBe(String(third));
    expect(alive(third)).toBe(false);
    expect(starts()).toBe(3);
    expect(supervisorLines().at(-1)).toEqual(expect.objectContaining({ msg: 'stopped', exitStatus: 0 }));
  });

  it('refuses to run without a command', async () => {
    const refused = spawn('bash', [script, 'svc', run], { stdio: 'ignore' });
    expect(await new Promise((done) => refused.once('exit', done))).toBe(64);
  });
});
