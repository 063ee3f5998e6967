import { setTimeout as sleep } from 'node:timers/promises';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './index';

const run = promisify(execFile);

export interface PrivateKafka {
  /** `127.0.0.1:<port>`. */
  broker: string;
  /** Stops the broker: SIGTERM (controlled shutdown) or SIGKILL (a crash); resolves once it exited. */
  stop: (signal?: 'SIGTERM' | 'SIGKILL') => Promise<void>;
  /** Starts it again on the same data and port; resolves once it serves. */
  start: () => Promise<void>;
  /**
   * A new cluster at the same address: the broker killed, its data deleted, its storage formatted with a new cluster
   * id, started again (an operator's re-provisioned broker; its topics must be created again).
   */
  replaceCluster: () => Promise<void>;
  /** Freezes the broker process (SIGSTOP): connections stay open, requests wait unanswered until `resume`. */
  pause: () => void;
  /** Lets a paused broker run again (SIGCONT): it then handles the requests that waited. */
  resume: () => void;
  log: () => string;
  /** With `saslSsl`: the TLS + SASL/PLAIN listener (`127.0.0.1:<port>`) and the PEM file of the CA that signed its certificate. */
  secured?: { broker: string; caFile: string };
  /** Kills it and deletes its data; safe to call twice. */
  destroy: () => Promise<void>;
}

export interface PrivateKafkaOptions {
  /**
   * Also listen with TLS and SASL/PLAIN, as managed Kafka does: a certificate for 127.0.0.1 signed by a CA made
   * for this broker (openssl), and these users (name → password).
   */
  saslSsl?: { users: Record<string, string> };
  /** Server properties set after the harness's own (a later line wins), e.g. a broken cluster's settings. */
  properties?: string[];
}

/**
 * A single-node KRaft broker of the test's own (the jars scripts/infra.sh fetched into .cache/kafka/lib, a temp
 * data dir, free ports), for tests that stop or restart the broker: the shared one must never be restarted under
 * other tests. Settings as in scripts/infra.sh, with a small heap.
 */
export async function startPrivateKafka(options: PrivateKafkaOptions = {}): Promise<PrivateKafka> {
  const root = resolve(__dirname, '../../../..');
  const lib = join(root, '.cache/kafka/lib');
  if (!existsSync(lib)) throw new Error(`no Kafka jars in ${lib}: run scripts/infra.sh up first`);
  const classpath = `${lib}/*`;
  const log4j = `-Dlog4j2.configurationFile=${join(root, 'infra/kafka/log4j2.properties')}`;
  const dir = mkdtempSync(join(tmpdir(), 'tally-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const config = join(dir, 'server.properties');
  const secured = options.saslSsl ? await securedListener(dir, await freePort(), options.saslSsl.users) : undefined;
  writeFileSync(config, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}${secured ? `,SASL_SSL://${secured.broker}` : ''}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}${secured ? `,SASL_SSL://${secured.broker}` : ''}`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${secured ? ',SASL_SSL:SASL_SSL' : ''}`,
    ...(secured?.properties ?? []),
    `log.dirs=${join(dir, 'data')}`,
    'num.partitions=3',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=true',
    'log.message.timestamp.type=LogAppendTime',
    ...(options.properties ?? []),
    '',
  ].join('\n'));

  let output = '';
  let child: ChildProcess | undefined;
  let destroyed = false;
  const kill = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);

  const start = async (): Promise<void> => {
    const from = output.length;
    const broker = spawn('java', ['-Xms128m', '-Xmx384m', '-XX:+UseSerialGC', log4j, '-cp', classpath, 'kafka.Kafka', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = broker;
    broker.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    broker.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 60_000;
    while (!output.slice(from).includes('Kafka Server started')) {
      if (broker.exitCode !== null) throw new Error(`private Kafka exited with ${broker.exitCode}: ${output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`private Kafka did not start within 60 s: ${output.slice(-2000)}`);
      await sleep(100);
    }
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const broker = child;
    if (!broker || broker.exitCode !== null || broker.signalCode !== null) return;
    const exited = new Promise<void>((done) => broker.once('exit', () => done()));
    broker.kill(signal);
    const timer = setTimeout(() => broker.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    process.removeListener('exit', kill);
    await stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };

  const format = async (): Promise<void> => {
    const { stdout } = await run('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'random-uuid']);
    await run('java', [log4j, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', stdout.trim(), '-c', config, '--ignore-formatted']);
  };
  const replaceCluster = async (): Promise<void> => {
    await stop('SIGKILL');
    rmSync(join(dir, 'data'), { recursive: true, force: true });
    await format();
    await start();
  };

  try {
    await format();
    await start();
  } catch (error) {
    await destroy();
    throw error;
  }
  const signal = (name: 'SIGSTOP' | 'SIGCONT') => () => void child?.kill(name);
  return {
    broker: `127.0.0.1:${port}`,
    ...(secured ? { secured: { broker: secured.broker, caFile: secured.caFile } } : {}),
    stop, start, replaceCluster, pause: signal('SIGSTOP'), resume: signal('SIGCONT'), log: () => output, destroy,
  };
}

/** A CA and a certificate for 127.0.0.1 (openssl), and the broker properties of a SASL_SSL listener with PLAIN users. */
async function securedListener(dir: string, port: number, users: Record<string, string>): Promise<{ broker: string; caFile: string; properties: string[] }> {
  const file = (name: string) => join(dir, name);
  const days = ['-days', '2'];
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), ...days, '-subj', '/CN=tally-test-ca']);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.crt'), ...days, '-extfile', file('san.ext')]);
  // Kafka's PEM key store: the unencrypted PKCS#8 key, then the certificate chain.
  writeFileSync(file('keystore.pem'), readFileSync(file('server.key'), 'utf8') + readFileSync(file('server.crt'), 'utf8') + readFileSync(file('ca.pem'), 'utf8'));
  const quote = (value: string) => JSON.stringify(value);
  const jaas = Object.entries(users).map(([name, password]) => `user_${name}=${quote(password)}`).join(' ');
  return {
    broker: `127.0.0.1:${port}`,
    caFile: file('ca.pem'),
    properties: [
      'sasl.enabled.mechanisms=PLAIN',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${jaas};`,
      'listener.name.sasl_ssl.ssl.keystore.type=PEM',
      `listener.name.sasl_ssl.ssl.keystore.location=${file('keystore.pem')}`,
    ],
  };
}
