import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort, TEST_PORTAL_TOKEN_SECRET, waitFor } from './index';

export interface ServiceProcess {
  port: number;
  base: string;
  child: ChildProcess;
  /** Everything the service logged (stdout and stderr). */
  output: () => string;
  /** Sends a signal and resolves when the process has exited. */
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

/**
 * The services' runtime flags, as in the Dockerfile and scripts/up.sh (docs/benchmarks.md, issue 17, sessions 4 and 14):
 * - a young generation of 32 MB instead of V8's default 16: the hot paths allocate a lot of short-lived objects
 *   (parsed messages, rows), and fewer, cheaper scavenges cut the event-to-balance p99 roughly in half on 2 cores;
 * - the old generation may grow to 3× what survived the last full collection (V8 picks up to 4× on a large machine).
 *   With SERVICE_ENV and the ledger's 10,000-account cache, the ledger peaked at 484 MB with 1,000,000 accounts
 *   touched (575–647 MB without), at no cost measurable in throughput or event → balance latency at 1,000 accounts.
 */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=32', '--heap-growing-percent=200'];

/**
 * The services' runtime environment, as in the Dockerfile and scripts/up.sh (glibc's allocator, which holds Node's
 * buffers): every allocation of 1 MiB or more (a Kafka fetch, the largest of PostgreSQL's) goes straight back to the
 * system when it is freed, instead of glibc raising that threshold as it goes (up to 32 MiB) and keeping the freed
 * memory; and two allocation arenas instead of up to 16 (one per thread: the event loop, libuv's pool, V8's helpers).
 * Not lower: at 128 KiB (session 14's value) every buffer kafkajs encodes a relay send into (128 KiB–1 MiB) was a
 * fresh mmap, page-faulted as it was written and unmapped after: the ledger's CPU per usage event was 13% higher
 * (docs/benchmarks.md, session 16), for no measurable memory gain with 1,000,000 accounts.
 */
export const SERVICE_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '1048576', MALLOC_ARENA_MAX: '2' };

/**
 * Rate limits of the services tests and benches start: far above anything a test sends (the fuzzer, the benches'
 * thousands of requests a second), so no test trips them by accident; a test of the limits sets its own.
 */
export const TEST_RATE_LIMITS: Readonly<Record<string, string>> = {
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
  RATE_LIMIT_ANONYMOUS_PER_SECOND: '1000000',
  RATE_LIMIT_ANONYMOUS_BURST: '1000000',
};

/**
 * How a service process runs: from source (`apps/<app>/src/main.ts` through ts-node/swc, as scripts/up.sh runs
 * it), or the compiled build (`dist/apps/<app>/src/main.js` from `npm run build`, as the Docker image runs it)
 * with a given Node binary.
 */
export type ServiceRuntime = { kind: 'source' } | { kind: 'compiled'; node: string };

/**
 * Starts one of the four services as a real process, the way `scripts/up.sh` does (or the Docker image, with a
 * compiled `runtime`), and resolves once `waitPath` (default /health/ready: it can serve, its workers flowing)
 * answers 200; `/health/live` resolves as soon as the process listens.
 */
export async function startServiceProcess(
  app: string,
  /** Added to this process's environment; a name set to undefined is left out (e.g. PORTAL_TOKEN_SECRET, set by default). */
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
  waitPath = '/health/ready',
  runtime: ServiceRuntime = { kind: 'source' },
): Promise<ServiceProcess> {
  const root = resolve(__dirname, '../../../..');
  const port = await freePort();
  // The services' runtime flags (as in scripts/up.sh and the Dockerfile), then SERVICE_NODE_ARGS: extra flags,
  // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile a bench.
  const nodeArgs = [...SERVICE_NODE_FLAGS, ...(process.env.SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const [node, entry] =
    runtime.kind === 'compiled'
      ? [runtime.node, [`dist/apps/${app}/src/main.js`]]
      : [process.execPath, ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', `apps/${app}/src/main.ts`]];
  const child = spawn(node, [...nodeArgs, ...entry], {
    cwd: root,
    env: { PORTAL_TOKEN_SECRET: TEST_PORTAL_TOKEN_SECRET, ...TEST_RATE_LIMITS, ...SERVICE_ENV, ...process.env, ...env, PORT: String(port), KAFKAJS_NO_PARTITIONER_WARNING: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  // SERVICE_LOG_DIR: each service's output also goes to <dir>/<app>-<pid>.log as it comes (e.g. with
  // SERVICE_NODE_ARGS=--trace-gc-nvp, the garbage collector's own account of each pause in a bench run); the
  // directory is created if it is not there.
  const logDir = process.env.SERVICE_LOG_DIR;
  if (logDir) {
    mkdirSync(logDir, { recursive: true });
    const file = join(logDir, `${app}-${child.pid}.log`);
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk: Buffer) => appendFileSync(file, chunk));
  }
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const base = `http://127.0.0.1:${port}`;
  // A process that exits before it answers fails the start at once, with its log (not when the wait times out).
  const exitedBeforeReady = exited.then(() => {
    throw new Error(`${app} exited with ${child.exitCode ?? child.signalCode} before ${waitPath} answered 200: ${log.slice(-2000)}`);
  });
  exitedBeforeReady.catch(() => undefined); // also exits later, on kill: not an unhandled rejection then
  try {
    await Promise.race([
      waitFor(async () => {
        if (!running()) return true; // exitedBeforeReady says why; stop polling
        const response = await fetch(`${base}${waitPath}`).catch(() => undefined);
        return response?.status === 200;
      }, timeoutMs, 200),
      exitedBeforeReady,
    ]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    port,
    base,
    child,
    output: () => log,
    kill: async (signal = 'SIGTERM') => {
      if (running()) child.kill(signal);
      await exited;
    },
  };
}
