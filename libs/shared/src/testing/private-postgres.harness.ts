import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './index';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth). */
  url: string;
  port: number;
  /** `pg_ctl restart -m fast`: every session is terminated (57P01), the server is back when it resolves. */
  restart: () => Promise<void>;
  /**
   * A crash of the server (`pg_ctl stop -m immediate`: no checkpoint, sessions cut), then started again: it recovers
   * from its WAL, and every commit it acknowledged is there (the OS, not the machine, survives: see `options`).
   */
  crash: () => Promise<void>;
  /** `pg_ctl stop -m fast`: connections are refused until `start`. */
  stop: () => Promise<void>;
  start: () => Promise<void>;
  /** The server's log (for a failing test's message). */
  log: () => string;
  /** Stops the server (immediate) and deletes its data directory; safe to call twice or after a failed start. */
  destroy: () => Promise<void>;
}

/** The PostgreSQL binaries: PG_BIN, else the newest /usr/lib/postgresql/<major>/bin, else whatever is on PATH. */
function postgresBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, 'bin', 'initdb'))) : [];
  majors.sort((a, b) => Number(b) - Number(a));
  return majors.length > 0 ? join(root, majors[0], 'bin') : '';
}

/**
 * A PostgreSQL server of the test's own (initdb in a temp dir, a free port, trust auth, its unix socket in the temp
 * dir), for tests that stop or restart the database: the shared one must never be restarted under other tests.
 * initdb and postgres refuse to run as root, so as root they run as the `postgres` OS user.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  const tool = (name: string) => (bin ? join(bin, name) : name);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'tally-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const port = await freePort();
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const pg = async (name: string, args: string[]): Promise<void> => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', tool(name), ...args]] : [tool(name), args];
    await run(file, argv, { timeout: 60_000 });
  };
  // Durable against a crash of the server (a commit is acknowledged once its WAL is written to the OS), not of the
  // machine (fsync off, for speed): what `crash` needs, at little cost.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=on -c full_page_writes=off -c max_connections=100`;
  const ctl = (...args: string[]) => pg('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '30', ...args]);

  let destroyed = false;
  const stopNow = () => {
    try {
      const [file, argv] = asRoot
        ? ['runuser', ['-u', 'postgres', '--', tool('pg_ctl'), '-D', data, '-m', 'immediate', 'stop']]
        : [tool('pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']];
      execFileSync(file, argv, { stdio: 'ignore', timeout: 20_000 });
    } catch {
      // not running
    }
  };
  // A test runner killed mid-test must not leave the server behind.
  const onExit = () => {
    if (!destroyed) stopNow();
  };
  process.once('exit', onExit);
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    process.removeListener('exit', onExit);
    stopNow();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await pg('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    await ctl('-o', options, 'start');
  } catch (error) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
    await destroy();
    throw new Error(`private PostgreSQL did not start: ${(error as Error).message}\n${log}`);
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: () => ctl('-m', 'fast', '-o', options, 'restart'),
    crash: async () => {
      await ctl('-m', 'immediate', 'stop');
      await ctl('-o', options, 'start');
    },
    stop: () => ctl('-m', 'fast', 'stop'),
    start: () => ctl('-o', options, 'start'),
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    destroy,
  };
}
