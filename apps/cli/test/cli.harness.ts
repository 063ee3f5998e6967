import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { Kafka, Partitioners, logLevel, type Producer } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { ledgerTestEnv, testKafkaBrokers } from '@tally/testing';

export const API_KEY = 'cli-test-admin-key';
const ROOT = resolve(__dirname, '../../..');

/** A ledger of its own for one test file: unique topics and groups in `schema` (the ledger's env). */
export function ledgerSettings(schema: string) {
  const { env, topics } = ledgerTestEnv([{ name: 'cli-test', key: API_KEY, scopes: ['admin'] }]);
  return { env: { ...env, DATABASE_SCHEMA: schema }, topics, createTopics: (partitions = 3) => ensureTopics(kafka(), topics, partitions) };
}

export const kafka = (): Kafka => new Kafka({ clientId: 'cli-test', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });

export async function usageProducer(): Promise<Producer> {
  const producer = kafka().producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return producer;
}

/** A usage event as a service produces it straight to usage.events.v1. */
export function usageMessage(id: string, accountId: string, model = 'gpt-4o-mini', occurredAt = new Date().toISOString()) {
  return {
    key: accountId,
    value: JSON.stringify({ id, type: 'UsageRecorded', version: 1, accountId, occurredAt, data: { feature: 'chat', model, inputTokens: 1000, outputTokens: 1000 } }),
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as an operator does (`npm run tally -- …` runs exactly this), with `env` on top of the test's environment. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CliRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', 'apps/cli/src/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`tally ${args.join(' ')} did not finish within ${timeoutMs} ms: ${stdout} ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** The CLI's environment for a ledger in `schema`: the same variables the ledger reads. */
export const cliEnv = (ledgerEnv: Record<string, string>, extra: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: ledgerEnv.DATABASE_URL,
  DATABASE_SCHEMA: ledgerEnv.DATABASE_SCHEMA,
  KAFKA_BROKERS: ledgerEnv.KAFKA_BROKERS,
  OFFSETS_SCHEMAS: ledgerEnv.DATABASE_SCHEMA,
  ...extra,
});

export const authorized = { authorization: `Bearer ${API_KEY}` };

/** A value the test set up (a started service, a read's field): the value, or a failure naming what is missing. */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is missing`);
  return value;
}
