import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { topicConfigOf } from './kafka-topics.client';

const ROOT = resolve(__dirname, '../../..');
const TOPICS = ['usage.events.v1', 'usage.events.dlq.v1', 'subscription.events.v1', 'subscription.events.dlq.v1', 'ledger.events.v1', 'ledger.events.dlq.v1'];

/** Each topic a `for topic in …; do … done` loop of a topic-creating script creates, with the --config pairs it gives. */
function topicsCreatedBy(script: string): Map<string, Record<string, string>> {
  const created = new Map<string, Record<string, string>>();
  for (const loop of script.matchAll(/for topic in ([^;]+); do([\s\S]*?)\bdone\b/g)) {
    const config = Object.fromEntries([...loop[2].matchAll(/--config ([\w.]+)=(\S+)/g)].map((pair) => [pair[1], pair[2]]));
    for (const topic of loop[1].trim().split(/\s+/)) created.set(topic, config);
  }
  return created;
}

/**
 * The topics deploy/ creates (a Kubernetes Job, docker compose's one-shot container) are created before any service
 * runs and kept as they are (`--if-not-exists`; no service but subscription-cycle corrects its own topic later), so
 * they must carry the settings the services' own topic creation gives (`topicConfigOf`): the broker's clock on each
 * message, a dead-letter topic's larger limit. Without them a producer whose clock runs an hour fast is refused for
 * good, and a message as large as its topic takes cannot be dead-lettered (its partition stops).
 */
describe('the topics deploy/ creates', () => {
  it('in the Kubernetes Job: every topic, with the settings topicConfigOf gives it', () => {
    const job = parseAllDocuments(readFileSync(resolve(ROOT, 'deploy/k8s/kafka-topics-job.yaml'), 'utf8'))
      .map((doc) => doc.toJS())
      .find((manifest) => manifest?.kind === 'Job');
    const created = topicsCreatedBy(job.spec.template.spec.containers[0].args.join('\n'));
    expect(Object.fromEntries(TOPICS.map((topic) => [topic, created.get(topic)]))).toEqual(Object.fromEntries(TOPICS.map((topic) => [topic, topicConfigOf(topic)])));
  });

  /**
   * The Job's script run by bash with the Job's environment (as the ConfigMap and Secret give it), its Kafka CLI
   * (KAFKA_BIN) a script that records its arguments and the client properties they name: a Job without the brokers'
   * TLS and SASL settings cannot connect to a cluster the services reach with them.
   */
  describe('in the Kubernetes Job: reaches the brokers as the services do (KAFKA_SSL, KAFKA_SASL_*)', () => {
    const job = parseAllDocuments(readFileSync(resolve(ROOT, 'deploy/k8s/kafka-topics-job.yaml'), 'utf8'))
      .map((doc) => doc.toJS())
      .find((manifest) => manifest?.kind === 'Job');
    const container = job.spec.template.spec.containers[0];

    function runJob(env: Record<string, string>): { calls: string[][]; properties: string[] } {
      const bin = mkdtempSync(join(tmpdir(), 'kafka-topics-job-'));
      try {
        for (const tool of ['kafka-topics.sh', 'kafka-configs.sh']) {
          writeFileSync(join(bin, tool), `#!/bin/bash
printf '%s\n' "${tool} $*" >> "${bin}/calls"
for ((i = 1; i <= $#; i++)); do if [ "\${!i}" = --command-config ]; then j=$((i + 1)); cp "\${!j}" "${bin}/properties"; fi; done
`);
          chmodSync(join(bin, tool), 0o755);
        }
        const fixed = Object.fromEntries((container.env as { name: string; value?: string }[]).filter((entry) => entry.value !== undefined).map((entry) => [entry.name, entry.value as string]));
        execFileSync('/bin/bash', ['-c', container.args.join('\n')], { env: { PATH: process.env.PATH ?? '', ...fixed, KAFKA_BROKERS: 'broker-0:9093', KAFKA_BIN: bin, ...env } });
        const calls = readFileSync(join(bin, 'calls'), 'utf8').trim().split('\n').map((line) => line.split(' '));
        let properties: string[] = [];
        try {
          properties = readFileSync(join(bin, 'properties'), 'utf8').trim().split('\n').filter(Boolean).sort();
        } catch {
          properties = [];
        }
        return { calls, properties };
      } finally {
        rmSync(bin, { recursive: true, force: true });
      }
    }

    it('reads the settings from the ConfigMap and the Secret, optionally', () => {
      const from = Object.fromEntries((container.env as { name: string; valueFrom?: Record<string, { name: string; key: string; optional?: boolean }> }[])
        .filter((entry) => entry.valueFrom).map((entry) => [entry.name, entry.valueFrom]));
      expect(from).toMatchObject({
        KAFKA_SSL: { configMapKeyRef: { name: 'tally-config', key: 'KAFKA_SSL', optional: true } },
        KAFKA_SSL_CA_FILE: { configMapKeyRef: { name: 'tally-config', key: 'KAFKA_SSL_CA_FILE', optional: true } },
        KAFKA_SASL_MECHANISM: { configMapKeyRef: { name: 'tally-config', key: 'KAFKA_SASL_MECHANISM', optional: true } },
        KAFKA_SASL_USERNAME: { configMapKeyRef: { name: 'tally-config', key: 'KAFKA_SASL_USERNAME', optional: true } },
        KAFKA_SASL_PASSWORD: { secretKeyRef: { name: 'tally-secrets', key: 'KAFKA_SASL_PASSWORD', optional: true } },
      });
    });

    it('plaintext: every call names PLAINTEXT client properties', () => {
      const { calls, properties } = runJob({ KAFKA_SSL: 'false', KAFKA_SASL_MECHANISM: 'none' });
      expect(calls).toHaveLength(9);
      // Dead-letter topics that existed before the Job (it creates only missing ones) get their retention too.
      expect(calls.filter(([tool]) => tool === 'kafka-configs.sh').map((call) => call.slice(-6))).toEqual(
        ['usage.events.dlq.v1', 'subscription.events.dlq.v1', 'ledger.events.dlq.v1'].map((topic) => ['--entity-type', 'topics', '--entity-name', topic, '--add-config', 'retention.ms=-1']),
      );
      for (const call of calls) expect(call).toEqual(expect.arrayContaining(['--bootstrap-server', 'broker-0:9093', '--command-config']));
      expect(properties).toEqual(['security.protocol=PLAINTEXT']);
    });

    it('TLS with a CA file and SCRAM: SASL_SSL, the PEM trust store, the login with the password escaped', () => {
      const { properties } = runJob({
        KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/etc/tally/kafka-ca.pem', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'tally', KAFKA_SASL_PASSWORD: 'p"a\\ss',
      });
      expect(properties).toEqual([
        // p"a\ss in JAAS is "p\"a\\ss", and each backslash doubled again in a properties file.
        String.raw`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="tally" password="p\\"a\\\\ss";`,
        'sasl.mechanism=SCRAM-SHA-512',
        'security.protocol=SASL_SSL',
        'ssl.truststore.location=/etc/tally/kafka-ca.pem',
        'ssl.truststore.type=PEM',
      ]);
    });

    it('SASL PLAIN without TLS: SASL_PLAINTEXT', () => {
      const { properties } = runJob({ KAFKA_SSL: 'false', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'tally', KAFKA_SASL_PASSWORD: 'secret' });
      expect(properties).toEqual([
        'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="tally" password="secret";',
        'sasl.mechanism=PLAIN',
        'security.protocol=SASL_PLAINTEXT',
      ]);
    });

    it('TLS alone, the system trust store: SSL', () => {
      expect(runJob({ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'none' }).properties).toEqual(['security.protocol=SSL']);
    });
  });

  it('in docker-compose.yml: every topic, with the settings topicConfigOf gives it', () => {
    const compose = parse(readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { command: string[] }> };
    const created = topicsCreatedBy(compose.services['kafka-topics'].command.join('\n'));
    expect(Object.fromEntries(TOPICS.map((topic) => [topic, created.get(topic)]))).toEqual(Object.fromEntries(TOPICS.map((topic) => [topic, topicConfigOf(topic)])));
  });
});
