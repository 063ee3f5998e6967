import { setTimeout as sleep } from 'node:timers/promises';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  /** Freezes the broker process (SIGSTOP): connections stay open, requests wait unanswered until `resume`. */
  pause: () => void;
  /** Lets a paused broker run again (SIGCONT): it then handles the requests that waited. */
  resume: () => void;
  log: () => string;
  /** Kills it and deletes its data; safe to call twice. */
  destroy: () => Promise<void>;
}

/**
 * A single-node KRaft broker of the test's own (the jars scripts/infra.sh fetched into .cache/kafka/lib, a temp
 * data dir, free ports), for tests that stop or restart the broker: the shared one must never be restarted under
 * other tests. Settings as in scripts/infra.sh, with a small heap.
 */
export async function startPrivateKafka(): Promise<PrivateKafka> {
  const root = resolve(__dirname, '../../../..');
  const lib = join(root, '.cache/kafka/lib');
  if (!existsSync(lib)) throw new Error(`no Kafka jars in ${lib}: run scripts/infra.sh up first`);
  const classpath = `${lib}/*`;
  const log4j = `-Dlog4j2.configurationFile=${join(root, 'infra/kafka/log4j2.properties')}`;
  const dir = mkdtempSync(join(tmpdir(), 'tally-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const config = join(dir, 'server.properties');
  writeFileSync(config, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
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

  try {
    const { stdout } = await run('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'random-uuid']);
    await run('java', [log4j, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', stdout.trim(), '-c', config, '--ignore-formatted']);
    await start();
  } catch (error) {
    await destroy();
    throw error;
  }
  const signal = (name: 'SIGSTOP' | 'SIGCONT') => () => void child?.kill(name);
  return { broker: `127.0.0.1:${port}`, stop, start, pause: signal('SIGSTOP'), resume: signal('SIGCONT'), log: () => output, destroy };
}
