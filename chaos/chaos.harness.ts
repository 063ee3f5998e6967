import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { logLevel } from 'kafkajs';
import { Pool } from 'pg';
import { Topics } from '@tally/contracts';
import { createKafkaClient, ensureTopics } from '@tally/kafka';
import { hashApiKey } from '@tally/shared';
import { SERVICE_ENV, SERVICE_NODE_FLAGS, TEST_RATE_LIMITS, freePort, startPrivateKafka, startPrivatePostgres, type PrivateKafka, type PrivatePostgres } from '@tally/testing';
import { startReceiver, startSmtp } from '../apps/notification/test/notification.harness';

export const ROOT = resolve(__dirname, '..');
/** One key with every scope: the workload is every client at once. */
export const API_KEY = 'chaos-run-key';
/**
 * The ledger's HOLD_SETTLE_GRACE_SECONDS in the run: a hold's event carries its TTL's end plus this (when its credits
 * are released), which the invariants take off to find the instant the hold was placed. Short, so holds left to expire
 * are released within the run, but not 0: the run's usage settling holds near their TTL's end goes through it.
 */
export const HOLD_SETTLE_GRACE_SECONDS = 2;
export const SERVICES = ['usage-ingest', 'ledger', 'subscription-cycle', 'notification'] as const;
export type ServiceName = (typeof SERVICES)[number];
export const PARTITIONS = 3;

/** The consumer groups whose offsets the services store in PostgreSQL with their effects: where to read them. */
export const CONSUMER_GROUPS = [
  { name: 'ledger usage', schema: 'ledger', group: 'ledger', topic: Topics.usageEvents },
  { name: 'ledger subscriptions', schema: 'ledger', group: 'ledger-subscriptions', topic: Topics.subscriptionEvents },
  { name: 'ledger projections', schema: 'ledger', group: 'ledger-projections', topic: Topics.ledgerEvents },
  { name: 'notification', schema: 'notification', group: 'notification', topic: Topics.ledgerEvents },
] as const;

/**
 * One service as a real process on a fixed port (so clients keep their address across restarts), started the way
 * scripts/up.sh and startServiceProcess start it; its output is appended to a log file. Every process it spawns is
 * tracked by PID so the run can always end it.
 */
export class ServiceSupervisor {
  child: ChildProcess | undefined;
  readonly pids = new Set<number>();
  /** Exits the run did not cause (no signal sent to that process, not torn down): a service that died by itself. */
  readonly unexpectedExits: { at: number; pid: number | undefined; exit: string }[] = [];
  /** The processes the run signalled or is tearing down: their exits are expected. */
  private readonly ending = new Set<ChildProcess>();
  private destroying = false;
  private readonly log: WriteStream;

  constructor(
    readonly name: ServiceName,
    readonly port: number,
    private readonly env: Record<string, string>,
    logDir: string,
  ) {
    this.log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Spawns the process; does not wait for it. */
  spawn(): ChildProcess {
    // A fault still under way when the run is torn down (deadline, interrupt) must not start a process nobody ends.
    if (this.destroying) throw new Error(`${this.name}: the run is torn down; not spawning`);
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, '-r', 'ts-node/register', '-r', 'tsconfig-paths/register', `apps/${this.name}/src/main.ts`], {
      cwd: ROOT,
      env: { ...TEST_RATE_LIMITS, ...SERVICE_ENV, ...process.env, ...this.env, PORT: String(this.port), KAFKAJS_NO_PARTITIONER_WARNING: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid !== undefined) this.pids.add(child.pid);
    this.log.write(`\n=== ${new Date().toISOString()} spawned pid ${child.pid}\n`);
    child.stdout?.pipe(this.log, { end: false });
    child.stderr?.pipe(this.log, { end: false });
    child.once('exit', (code, signal) => {
      this.log.write(`\n=== ${new Date().toISOString()} pid ${child.pid} exited ${code ?? signal}\n`);
      if (child.pid !== undefined) this.pids.delete(child.pid);
      if (!this.destroying && !this.ending.delete(child)) this.unexpectedExits.push({ at: Date.now(), pid: child.pid, exit: String(code ?? signal) });
    });
    this.child = child;
    return child;
  }

  async ready(): Promise<boolean> {
    const response = await fetch(`${this.base}/health/ready`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    return response?.status === 200;
  }

  /** Spawns the process and resolves once /health/ready answers 200 (the service serves, its workers flow). */
  async start(timeoutMs = 120_000): Promise<number> {
    const started = Date.now();
    const child = this.spawn();
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.name} exited during start-up (${child.exitCode ?? child.signalCode}); see its log`);
      if (await this.ready()) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`${this.name} not ready within ${timeoutMs} ms; see its log`);
      await sleep(200);
    }
  }

  /** Sends a signal to the running process; SIGKILL resolves once it has exited. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.ending.add(child);
    child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Ends every process this supervisor spawned (by PID), resumed first in case it was paused. */
  async destroy(): Promise<void> {
    this.destroying = true;
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (this.running()) await this.signal('SIGKILL');
    await new Promise<void>((done) => this.log.end(done));
  }
}

type Smtp = Awaited<ReturnType<typeof startSmtp>>;
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/**
 * The whole system of one fault run: a PostgreSQL and a Kafka broker of its own (so restarting them disturbs
 * nothing else on the machine), an SMTP sink and a webhook receiver, and the four services as real processes.
 */
export class ChaosSystem {
  readonly services = new Map<ServiceName, ServiceSupervisor>();
  pool!: Pool;

  private constructor(
    readonly postgres: PrivatePostgres,
    readonly kafka: PrivateKafka,
    readonly smtp: Smtp,
    readonly receiver: Receiver,
    readonly logDir: string,
  ) {}

  static async start(logDir: string): Promise<ChaosSystem> {
    mkdirSync(logDir, { recursive: true });
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const postgres = await startPrivatePostgres();
      cleanups.push(() => postgres.destroy());
      const kafka = await startPrivateKafka();
      cleanups.push(() => kafka.destroy());
      const smtp = await startSmtp();
      cleanups.push(() => smtp.close());
      const receiver = await startReceiver();
      cleanups.push(() => receiver.close());
      const system = new ChaosSystem(postgres, kafka, smtp, receiver, logDir);
      system.pool = new Pool({ connectionString: postgres.url, max: 4 });
      // Errors of idle clients (PostgreSQL restarted under them) are expected here; the next query reconnects.
      system.pool.on('error', () => undefined);
      await ensureTopics(system.kafkaClient('chaos-admin'), Object.values(Topics), PARTITIONS);
      await system.createServices();
      return system;
    } catch (error) {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
      throw error;
    }
  }

  kafkaClient(clientId: string) {
    // A short retry budget: the harness's own admin calls are retried by its loops, not inside kafkajs.
    return createKafkaClient({ clientId, brokers: [this.kafka.broker], logLevel: logLevel.NOTHING, retry: { retries: 2, maxRetryTime: 2_000 } });
  }

  service(name: ServiceName): ServiceSupervisor {
    const service = this.services.get(name);
    if (!service) throw new Error(`no service ${name}`);
    return service;
  }

  private async createServices(): Promise<void> {
    const common = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: this.postgres.url,
      KAFKA_BROKERS: this.kafka.broker,
      API_KEYS: JSON.stringify([{ name: 'chaos', sha256: hashApiKey(API_KEY), scopes: ['usage:write', 'accounts:read', 'admin'] }]),
    };
    const own: Record<ServiceName, Record<string, string>> = {
      'usage-ingest': {},
      ledger: { HOLD_SETTLE_GRACE_SECONDS: String(HOLD_SETTLE_GRACE_SECONDS) },
      // Cycles: upgrades start one at once; the scheduler and the outbox look often so they follow quickly.
      'subscription-cycle': { SCHEDULER_INTERVAL_MS: '1000', OUTBOX_INTERVAL_MS: '100' },
      notification: {
        SMTP_HOST: '127.0.0.1', SMTP_PORT: String(this.smtp.port), WEBHOOK_HTTP_ALLOWLIST: '127.0.0.1', WEBHOOK_TIMEOUT_MS: '2000', SMTP_TIMEOUT_MS: '2000',
        RETRY_BASE_DELAY_MS: '200', RETRY_MAX_DELAY_MS: '1000', DISPATCH_INTERVAL_MS: '100',
        BILLING_URL: 'https://app.example.com/billing', MAIL_FROM: 'Tally <alerts@example.com>',
      },
    };
    for (const name of SERVICES) this.services.set(name, new ServiceSupervisor(name, await freePort(), { ...common, ...own[name] }, this.logDir));
  }

  /** Starts the four services one after another (each creates its schema and migrates on boot). */
  async startServices(): Promise<void> {
    for (const name of SERVICES) await this.service(name).start();
  }

  /** Ends every process the run started (by PID) and deletes the private data dirs; safe to call twice. */
  async destroy(): Promise<void> {
    for (const service of this.services.values()) await service.destroy().catch(() => undefined);
    await this.pool?.end().catch(() => undefined);
    await this.receiver.close().catch(() => undefined);
    await this.smtp.close().catch(() => undefined);
    await this.kafka.destroy().catch(() => undefined);
    await this.postgres.destroy().catch(() => undefined);
  }
}
