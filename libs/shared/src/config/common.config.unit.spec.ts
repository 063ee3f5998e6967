import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommonConfig } from './common.config';
import { ConfigError, loadConfig, redactConfig } from './env-config.parser';

const base = { PORT: '3000', DATABASE_SCHEMA: 'ledger', KAFKA_BROKERS: 'kafka-1:9093,kafka-2:9093' };
const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(CommonConfig, { ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.variable).sort();
    throw error;
  }
  return [];
};

describe('CommonConfig: how the Kafka clients connect', () => {
  it('connects in plain text without authentication by default', () => {
    expect(loadConfig(CommonConfig, base).kafkaConnection()).toEqual({ brokers: ['kafka-1:9093', 'kafka-2:9093'] });
  });

  it('turns on TLS with Node\'s CAs, or with the CA file given', () => {
    expect(loadConfig(CommonConfig, { ...base, KAFKA_SSL: 'true' }).kafkaConnection().ssl).toBe(true);
    const caFile = join(mkdtempSync(join(tmpdir(), 'kafka-ca-')), 'ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect(loadConfig(CommonConfig, { ...base, KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: caFile }).kafkaConnection().ssl).toEqual({
      ca: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'],
    });
  });

  it('authenticates with SASL and redacts the password wherever the config is logged', () => {
    const config = loadConfig(CommonConfig, { ...base, KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'tally', KAFKA_SASL_PASSWORD: 's3cret' });
    expect(config.kafkaConnection().sasl).toEqual({ mechanism: 'scram-sha-512', username: 'tally', password: 's3cret' });
    expect(redactConfig(config)).toMatchObject({ KAFKA_SASL_USERNAME: 'tally', KAFKA_SASL_PASSWORD: '[redacted]' });
  });

  it('refuses an unknown mechanism, SASL without credentials, and a TLS flag that is not a boolean', () => {
    expect(problems({ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toEqual(['KAFKA_SASL_MECHANISM']);
    expect(problems({ KAFKA_SASL_MECHANISM: 'plain' })).toEqual(['KAFKA_SASL_PASSWORD', 'KAFKA_SASL_USERNAME']);
    expect(problems({ KAFKA_SSL: 'yes' })).toEqual(['KAFKA_SSL']);
    expect(problems({ KAFKA_SSL_CA_FILE: '' })).toEqual(['KAFKA_SSL_CA_FILE']);
  });

  it('refuses a CA file without TLS (the operator meant TLS; the connection would be plain text), and SASL PLAIN without TLS in production', () => {
    expect(problems({ KAFKA_SSL_CA_FILE: '/etc/kafka/ca.pem' })).toEqual(['KAFKA_SSL_CA_FILE']);
    const sasl = { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'tally', KAFKA_SASL_PASSWORD: 's3cret' };
    expect(problems({ ...sasl, NODE_ENV: 'production' })).toEqual(['KAFKA_SASL_MECHANISM']);
    expect(problems({ ...sasl, KAFKA_SASL_MECHANISM: 'scram-sha-512', NODE_ENV: 'production' })).toEqual([]); // no password on the wire
    expect(problems({ ...sasl, NODE_ENV: 'production', KAFKA_SSL: 'true' })).toEqual([]);
    expect(problems({ ...sasl, NODE_ENV: 'development' })).toEqual([]);
  });

  it('stops at boot naming the CA file when it cannot be read', () => {
    const config = loadConfig(CommonConfig, { ...base, KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' });
    expect(() => config.kafkaConnection()).toThrow(/\/nonexistent\/ca\.pem/);
  });
});

describe('CommonConfig: how long the pools wait for PostgreSQL', () => {
  it('gives a statement 60 s by default, and takes 1 s to 90 s', () => {
    expect(loadConfig(CommonConfig, base).poolLimits()).toEqual({ queryTimeoutMs: 60_000, connectTimeoutMs: 10_000 });
    expect(problems({ PG_QUERY_TIMEOUT_MS: '1000' })).toEqual([]);
    expect(problems({ PG_QUERY_TIMEOUT_MS: '90000' })).toEqual([]);
  });

  it('refuses no limit at all, and limits the readiness checks could not see a failure within', () => {
    // A statement that never fails (0: for ever) or fails only after the workers' quiet times (the expiry worker's
    // 120 s, the relay's 180 s: a streak ends on that much silence) would leave a stuck worker reported ready.
    expect(problems({ PG_QUERY_TIMEOUT_MS: '0' })).toEqual(['PG_QUERY_TIMEOUT_MS']);
    expect(problems({ PG_QUERY_TIMEOUT_MS: '90001' })).toEqual(['PG_QUERY_TIMEOUT_MS']);
    expect(problems({ PG_QUERY_TIMEOUT_MS: '600000' })).toEqual(['PG_QUERY_TIMEOUT_MS']);
    // Every statement, a relay page or a batch of 1,000 usages included, would time out.
    expect(problems({ PG_QUERY_TIMEOUT_MS: '1' })).toEqual(['PG_QUERY_TIMEOUT_MS']);
  });
});

describe('CommonConfig: where traces are exported (the standard OTEL_* variables, validated)', () => {
  it('sends OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, or to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given', () => {
    expect(loadConfig(CommonConfig, base).otlpExporterOptions()).toEqual({});
    expect(loadConfig(CommonConfig, { ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example:4318/' }).otlpExporterOptions()).toEqual({ url: 'https://otel.example:4318/v1/traces' });
    expect(
      loadConfig(CommonConfig, { ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/ingest' }).otlpExporterOptions(),
    ).toEqual({ url: 'https://traces.example/ingest' });
  });

  it('sends the headers (e.g. a vendor API key) and the timeout, and redacts the headers wherever the config is logged', () => {
    const config = loadConfig(CommonConfig, { ...base, OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s3cret, x-tenant=tally%20prod', OTEL_EXPORTER_OTLP_TIMEOUT: '2500' });
    expect(config.otlpExporterOptions()).toEqual({ headers: { 'api-key': 's3cret', 'x-tenant': 'tally prod' }, timeoutMillis: 2500 });
    expect(redactConfig(config)).toMatchObject({ OTEL_EXPORTER_OTLP_HEADERS: '[redacted]' });
  });

  it('refuses headers that are not key=value pairs, a traces endpoint that is not a URL, and a timeout out of range', () => {
    expect(problems({ OTEL_EXPORTER_OTLP_HEADERS: 'just-a-token' })).toEqual(['OTEL_EXPORTER_OTLP_HEADERS']);
    expect(problems({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'otel:4318' })).toEqual(['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
    expect(problems({ OTEL_EXPORTER_OTLP_TIMEOUT: '0' })).toEqual(['OTEL_EXPORTER_OTLP_TIMEOUT']);
  });
});

describe('CommonConfig: the size of the PostgreSQL pools', () => {
  it('is the service\'s own default unless PG_POOL_MAX says otherwise (1-1000)', () => {
    expect(loadConfig(CommonConfig, base).poolMax(20)).toBe(20);
    expect(loadConfig(CommonConfig, { ...base, PG_POOL_MAX: '4' }).poolMax(20)).toBe(4);
    expect(problems({ PG_POOL_MAX: '0' })).toEqual(['PG_POOL_MAX']);
    expect(problems({ PG_POOL_MAX: 'many' })).toEqual(['PG_POOL_MAX']);
  });
});

describe('CommonConfig: TRUST_PROXY, where the client address comes from', () => {
  it('takes false, the proxies\' addresses or CIDRs, or a number of proxy hops', () => {
    expect(loadConfig(CommonConfig, base).trustProxy()).toBe(false);
    expect(loadConfig(CommonConfig, { ...base, TRUST_PROXY: '10.0.0.0/8, 192.168.1.7' }).trustProxy()).toEqual(['10.0.0.0/8', '192.168.1.7']);
    const oneHop = loadConfig(CommonConfig, { ...base, TRUST_PROXY: '1', NODE_ENV: 'production' }).trustProxy() as (address: string, hop: number) => boolean;
    expect([oneHop('10.0.0.5', 0), oneHop('203.0.113.9', 1)]).toEqual([true, false]); // the ingress trusted, the next hop is the client
  });

  // `true` trusts every hop: the left-most X-Forwarded-For entry, which the client writes, becomes its address, and
  // the anonymous rate limit (by address) is escaped with an invented address per request.
  it('refuses true in production, naming the variable; takes it elsewhere', () => {
    expect(problems({ TRUST_PROXY: 'true', NODE_ENV: 'production' })).toEqual(['TRUST_PROXY']);
    expect(loadConfig(CommonConfig, { ...base, TRUST_PROXY: 'true' }).trustProxy()).toBe(true);
  });
});
