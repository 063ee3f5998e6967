import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { collectProcessMetrics, metricsRegistry } from '../src/metrics/process.metrics';

/**
 * deploy/prometheus/tally.rules.yaml, its PrometheusRule copy and deploy/grafana/tally.dashboard.json are not loaded
 * by a Prometheus or a Grafana here, so what they promise is checked by reading them: every rule is complete, and
 * every metric a rule or a panel names is one the services define (the `name:` of a prom-client metric in a
 * `*.metrics.ts` file, or Node's default metrics). apps/ledger/test/stuck-consumer-metrics.e2e.spec.ts checks the
 * ledger's share against a real scrape.
 */
const root = resolve(__dirname, '../../..');
const read = (path: string) => readFileSync(resolve(root, path), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rules = parse(read('deploy/prometheus/tally.rules.yaml')) as { groups: { name: string; rules: Rule[] }[] };
const dashboard = JSON.parse(read('deploy/grafana/tally.dashboard.json')) as { panels: { type: string; title: string; targets?: { expr: string }[] }[] };

/** Metric names a PromQL expression reads (Tally's, Node's and process defaults, and `up`). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:tally|nodejs|process)_[a-z0-9_]+|up)\b(?!\s*\()/g)].map(([, name]) => name);
}

/** The `*.metrics.ts` files under `dir` (relative to the repository), node_modules aside. */
function metricsFiles(dir: string): string[] {
  return readdirSync(resolve(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.metrics.ts') && !/(^|\/)node_modules\//.test(file))
    .map((file) => join(dir, file));
}

/** Every series name the services can expose: prom-client definitions (and scrapeTimeGauges) in *.metrics.ts files, plus Node's defaults. */
function definedSeries(): Set<string> {
  const files = ['apps', 'libs'].flatMap((dir) => metricsFiles(dir));
  const series = new Set<string>(['up']);
  for (const file of files) {
    const source = read(file);
    for (const [, kind, body] of source.matchAll(/\b(counter|gauge|histogram)\(\{([\s\S]*?)\n\}\)/g)) {
      const name = /name: '([a-z0-9_]+)'/.exec(body)?.[1];
      if (!name) continue;
      series.add(name);
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) series.add(name + suffix);
    }
    // Gauges read at scrape time, several to a call: scrapeTimeGauges(read, [{ name, help, value }, …]).
    for (const [, body] of source.matchAll(/\bscrapeTimeGauges\(([\s\S]*?)\n\]\);/g)) {
      for (const [, name] of body.matchAll(/name: '([a-z0-9_]+)'/g)) series.add(name);
    }
  }
  collectProcessMetrics();
  for (const metric of metricsRegistry.getMetricsAsArray()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    series.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) series.add(name + suffix);
  }
  return series;
}

describe('Prometheus alert rules (deploy/prometheus/tally.rules.yaml)', () => {
  const all = rules.groups.flatMap((group) => group.rules);

  it('has the alerts the issue asks for: consumer stuck and lag growing, relay lag, DLQ growth, outbox age, readiness', () => {
    expect(all.map((rule) => rule.alert)).toEqual(
      expect.arrayContaining(['TallyConsumerStalled', 'TallyConsumerLagGrowing', 'TallyRelayLagging', 'TallyDeadLettersGrowing', 'TallyOutboxStale', 'TallyNotReady']),
    );
  });

  it('gives every rule an expr, a for duration, a severity label and a summary and description', () => {
    for (const rule of all) {
      expect({ alert: rule.alert, expr: typeof rule.expr, for: /^\d+[smh]$/.test(rule.for), severity: ['page', 'warn'].includes(rule.labels?.severity) })
        .toEqual({ alert: rule.alert, expr: 'string', for: true, severity: true });
      expect(rule.expr.trim().length).toBeGreaterThan(0);
      expect(rule.annotations.summary?.length).toBeGreaterThan(0);
      expect(rule.annotations.description?.length).toBeGreaterThan(0);
    }
    expect(new Set(all.map((rule) => rule.alert)).size).toBe(all.length);
  });

  /** "120 s", "1m" and the like, in seconds. */
  const seconds = (text: string) => Number(/^(\d+)/.exec(text)?.[1]) * ({ s: 1, m: 60, h: 3_600 } as Record<string, number>)[text.replace(/^\d+\s*/, '')[0]];

  it('pages while the ledger applies usage so late that holds placed with the default TTL lapse before their usage lands', () => {
    const rule = all.find((candidate) => candidate.alert === 'TallyUsageBehindHolds');
    expect(rule).toBeDefined();
    expect(rule?.labels.severity).toBe('page');
    expect(rule?.expr).toContain('tally_kafka_consumer_last_message_age_seconds{group="ledger"}');
    expect(rule?.expr).toContain('tally_kafka_consumer_lag_messages{group="ledger"}');
    const defaults = read('apps/ledger/src/config/ledger.config.ts');
    const holdTtl = Number(/HOLD_DEFAULT_TTL_SECONDS = (\d[\d_]*)/.exec(defaults)?.[1].replace(/_/g, ''));
    const behind = Number(/last_message_age_seconds\{group="ledger"\}\) > (\d+)/.exec(rule?.expr ?? '')?.[1]);
    // Fires (threshold + for) with at least a minute left before the default TTL runs out.
    expect(behind + seconds(rule?.for ?? '')).toBeLessThanOrEqual(holdTtl - 60);
    expect(/CONSUMER_GROUP = 'ledger'/.test(defaults)).toBe(true);
  });

  it('is copied word for word into the PrometheusRule of deploy/k8s/monitoring', () => {
    const [resource] = parseAllDocuments(read('deploy/k8s/monitoring/prometheusrule.yaml')).map((doc) => doc.toJS());
    expect(resource.kind).toBe('PrometheusRule');
    expect(resource.spec.groups).toEqual(rules.groups);
  });
});

describe('monitoring names only metrics the services define', () => {
  const series = definedSeries();

  it('finds the definitions (a sanity check of the scan itself)', () => {
    for (const name of ['tally_kafka_consumer_lag_messages', 'tally_relay_lag_seconds', 'tally_outbox_oldest_age_seconds', 'tally_http_request_duration_seconds_bucket', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(series).toContain(name);
    }
  });

  it('in every alert rule', () => {
    const unknown = rules.groups.flatMap((group) => group.rules.flatMap((rule) => metricNames(rule.expr).filter((name) => !series.has(name)).map((name) => `${rule.alert}: ${name}`)));
    expect(unknown).toEqual([]);
  });

  it('in every dashboard panel, and every panel has a query', () => {
    const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
    expect(panels.length).toBeGreaterThanOrEqual(20);
    const unknown = panels.flatMap((panel) => {
      expect(panel.targets?.length).toBeGreaterThan(0);
      return (panel.targets ?? []).flatMap((target) => metricNames(target.expr).filter((name) => !series.has(name)).map((name) => `${panel.title}: ${name}`));
    });
    expect(unknown).toEqual([]);
  });
});

describe('Kubernetes scraping (deploy/k8s and deploy/k8s/monitoring)', () => {
  interface Manifest {
    kind: string;
    metadata: { name: string; labels?: Record<string, string> };
    spec: any;
  }
  const load = (dir: string): Manifest[] =>
    readdirSync(resolve(root, dir))
      .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
      .flatMap((file) => parseAllDocuments(read(join(dir, file))).map((doc) => doc.toJS() as Manifest | null))
      .filter((m): m is Manifest => m !== null);
  const manifests = load('deploy/k8s');
  const [monitor] = load('deploy/k8s/monitoring').filter((m) => m.kind === 'ServiceMonitor');

  it('the ServiceMonitor scrapes /metrics on the http port of the Services labelled tally.dev/metrics, job = the app', () => {
    expect(monitor.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/part-of': 'tally', 'tally.dev/metrics': 'true' });
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    expect(monitor.spec.jobLabel).toBe('app.kubernetes.io/name');
  });

  it('every pod of every Deployment (the ledger workers included) is behind exactly one scraped Service', () => {
    const selected = (labels: Record<string, string>, selector: Record<string, string>) => Object.entries(selector).every(([key, value]) => labels[key] === value);
    const scraped = manifests.filter((m) => m.kind === 'Service' && selected(m.metadata.labels ?? {}, monitor.spec.selector.matchLabels));
    for (const service of scraped) expect(service.spec.ports.map((port: { name: string }) => port.name)).toContain('http');
    const deployments = manifests.filter((m) => m.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name)).toEqual(expect.arrayContaining(['ledger-api', 'ledger-commands', 'ledger-projection']));
    for (const deployment of deployments) {
      const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
      const services = scraped.filter((service) => selected(podLabels, service.spec.selector)).map((service) => service.metadata.name);
      expect({ deployment: deployment.metadata.name, services: services.length }).toEqual({ deployment: deployment.metadata.name, services: 1 });
    }
  });
});
