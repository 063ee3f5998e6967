import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration } from 'prom-client';

/**
 * The process's one Prometheus registry (prom-client): every metric of every module of a service is in it, and
 * `GET /metrics` (MetricsModule) serves it. Metrics are defined once, at module load, by the code that knows what
 * they measure (libs/kafka's consumer, the ledger's relay, …); what several instances in one process report (the
 * consumers of two groups) is told apart by labels.
 *
 * Names follow Prometheus conventions: a `tally_` prefix, the unit in the name (`_seconds`, `_bytes`), `_total` for
 * counters. Labels are bounded: route templates, group, topic, partition, reason codes; never a raw URL or an id.
 */
export const metricsRegistry = new Registry();

let defaultsCollected = false;

/** Node's own metrics (event-loop delay, GC, heap, CPU, handles) under their standard names; once per process. */
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  collectDefaultMetrics({ register: metricsRegistry, eventLoopMonitoringPrecision: 20 });
}

/**
 * The metric already registered under this name, or a new one: a module evaluated twice in one process (Jest's
 * module registry per test file) must not fail on "already registered".
 */
function existing<T>(name: string, create: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? create();
}

export function counter<L extends string>(config: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
  return existing(config.name, () => new Counter<L>({ ...config, registers: [metricsRegistry] }));
}

/** A gauge; prefer a `collect()` that reads the value at scrape time over setting it on the hot path. */
export function gauge<L extends string>(config: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
  return existing(config.name, () => new Gauge<L>({ ...config, registers: [metricsRegistry] }));
}

export function histogram<L extends string>(config: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
  return existing(config.name, () => new Histogram<L>({ ...config, registers: [metricsRegistry] }));
}

/** Seconds buckets for work that takes milliseconds (an HTTP request, an append, a batch). */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Sources a scrape-time gauge reads (e.g. every running consumer): an instance adds itself when it starts and
 * removes itself when it stops, so a stopped consumer's partitions leave the scrape.
 */
export class MetricSources<T> {
  private readonly sources = new Set<T>();

  add(source: T): void {
    this.sources.add(source);
  }

  delete(source: T): void {
    this.sources.delete(source);
  }

  [Symbol.iterator](): Iterator<T> {
    return this.sources.values();
  }
}

/** The reading of the first of `sources` (one per process), or undefined when none runs or it fails (PostgreSQL down: readiness says why). */
export async function firstReading<S, T>(sources: MetricSources<S>, read: (source: S) => Promise<T>): Promise<T | undefined> {
  for (const source of sources) return read(source).catch(() => undefined);
  return undefined;
}

/**
 * Gauges whose values are read at scrape time, each from a field of one reading: a scrape collects its gauges together,
 * so they share the `read` in flight (one query for the pair, and values from the same moment). A scrape with no
 * reading leaves them out.
 */
export function scrapeTimeGauges<T>(read: () => Promise<T | undefined>, gauges: ReadonlyArray<{ name: string; help: string; value: (reading: T) => number }>): void {
  let inFlight: Promise<T | undefined> | undefined;
  const shared = (): Promise<T | undefined> =>
    (inFlight ??= read().finally(() => {
      inFlight = undefined;
    }));
  for (const { name, help, value } of gauges) {
    gauge({
      name,
      help,
      async collect() {
        this.reset();
        const reading = await shared();
        if (reading !== undefined) this.set(value(reading));
      },
    });
  }
}
