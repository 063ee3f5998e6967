import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
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

  it('in docker-compose.yml: every topic, with the settings topicConfigOf gives it', () => {
    const compose = parse(readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { command: string[] }> };
    const created = topicsCreatedBy(compose.services['kafka-topics'].command.join('\n'));
    expect(Object.fromEntries(TOPICS.map((topic) => [topic, created.get(topic)]))).toEqual(Object.fromEntries(TOPICS.map((topic) => [topic, topicConfigOf(topic)])));
  });
});
