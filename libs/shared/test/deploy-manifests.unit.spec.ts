import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * The Kubernetes manifests in deploy/k8s are not applied anywhere here (no cluster), so what they promise is
 * checked by reading them: the ledger's workers run as separate Deployments (HTTP, commands + relay,
 * projection), each worker named by exactly one; every pod has the liveness/readiness split; consumer
 * Deployments do not outgrow the partitions; the ledger Service reaches only the HTTP pods.
 */
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: any;
}

const dir = resolve(__dirname, '../../../deploy/k8s');
const manifests: Manifest[] = readdirSync(dir)
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) => parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => doc.toJS() as Manifest | null))
  .filter((m): m is Manifest => m !== null);
const deployments = manifests.filter((m) => m.kind === 'Deployment');
const container = (d: Manifest) => d.spec.template.spec.containers[0];
const envOf = (d: Manifest): Record<string, string> => Object.fromEntries((container(d).env ?? []).filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
const PARTITIONS = 6;

describe('deploy/k8s manifests', () => {
  it('run the ledger as an HTTP-only Deployment and worker Deployments naming each worker exactly once', () => {
    const ledger = deployments.filter((d) => envOf(d).APP === 'ledger');
    const workers = Object.fromEntries(ledger.map((d) => [d.metadata.name, envOf(d).WORKERS]));
    expect(workers).toEqual({ 'ledger-api': 'none', 'ledger-commands': 'commands,relay', 'ledger-projection': 'projection' });
    const named = Object.values(workers).flatMap((w) => (w === 'none' ? [] : w.split(',')));
    expect(named.sort()).toEqual(['commands', 'projection', 'relay']);
  });

  it('send the ledger Service only to the HTTP pods, and autoscale only Deployments without a consumer group', () => {
    const service = manifests.find((m) => m.kind === 'Service' && m.metadata.name === 'ledger');
    const api = deployments.find((d) => d.metadata.name === 'ledger-api');
    if (!service || !api) throw new Error('deploy/k8s/ledger.yaml must define the ledger Service and the ledger-api Deployment');
    expect(service.spec.selector).toEqual({ 'app.kubernetes.io/name': 'ledger', 'app.kubernetes.io/component': 'api' });
    expect(api.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    const autoscaled = manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler').map((m) => m.spec.scaleTargetRef.name);
    expect(autoscaled.sort()).toEqual(['ledger-api', 'usage-ingest']);
    for (const name of autoscaled) expect(deployments.map((d) => d.metadata.name)).toContain(name);
  });

  it('give consumer Deployments at most one replica per partition', () => {
    const consumers = deployments.filter((d) => ['ledger-commands', 'ledger-projection', 'notification'].includes(d.metadata.name));
    expect(consumers).toHaveLength(3);
    for (const d of consumers) expect(d.spec.replicas).toBeLessThanOrEqual(PARTITIONS);
  });

  it('probe every pod with /health/live for startup and liveness and /health/ready for readiness', () => {
    expect(deployments.length).toBeGreaterThanOrEqual(6);
    for (const d of deployments) {
      const c = container(d);
      expect({ name: d.metadata.name, startup: c.startupProbe.httpGet.path, liveness: c.livenessProbe.httpGet.path, readiness: c.readinessProbe.httpGet.path })
        .toEqual({ name: d.metadata.name, startup: '/health/live', liveness: '/health/live', readiness: '/health/ready' });
    }
  });

  it('need only secret keys that the README\'s `kubectl create secret` command creates (a missing one: the pod never starts)', () => {
    const required = new Set<string>();
    for (const d of deployments) {
      for (const e of container(d).env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && ref.name === 'tally-secrets' && !ref.optional) required.add(ref.key);
      }
    }
    const readme = readFileSync(resolve(__dirname, '../../../deploy/README.md'), 'utf8');
    const command = readme.slice(readme.indexOf('create secret generic tally-secrets'));
    const created = new Set([...command.slice(0, command.indexOf('\n#')).matchAll(/--from-literal=([A-Z_]+)=/g)].map((match) => match[1]));
    expect([...required].filter((key) => !created.has(key))).toEqual([]);
    expect(required.size).toBeGreaterThanOrEqual(3);
  });

  it('name, in the upgrade notes, every migration that builds outside a transaction (an index built CONCURRENTLY can outlast the startup probe)', () => {
    const root = resolve(__dirname, '../../..');
    const sources = ['apps', 'libs'].flatMap((top) =>
      readdirSync(join(root, top), { recursive: true, encoding: 'utf8' })
        .filter((file) => /migrations\/[^/]+\.ts$/.test(file) && !file.endsWith('.spec.ts'))
        .map((file) => readFileSync(join(root, top, file), 'utf8')),
    );
    const outside = sources.filter((text) => /readonly transaction = false/.test(text)).map((text) => /export class (\w+)/.exec(text)?.[1]);
    expect(outside.length).toBeGreaterThanOrEqual(3);
    const notes = readFileSync(resolve(root, 'deploy/README.md'), 'utf8');
    expect(outside.filter((name) => !name || !notes.includes(name))).toEqual([]);
  });
});
