import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashApiKey } from '@tally/shared';
import { startServiceProcess, waitFor, type ServiceProcess } from '@tally/testing';
import { collect, createTestSchema, createTopics, ledgerTestSettings } from './ledger.harness';

interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}

interface ReceivedWebhook {
  body: string;
  headers: IncomingHttpHeaders;
}

/** A small OTLP/HTTP receiver (JSON, what @opentelemetry/exporter-trace-otlp-http sends): every span it is sent; and webhooks at /hooks. */
async function startOtlpReceiver(): Promise<{ url: string; spans: ExportedSpan[]; webhooks: ReceivedWebhook[]; close: () => Promise<void> }> {
  const spans: ExportedSpan[] = [];
  const webhooks: ReceivedWebhook[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      if (request.url === '/v1/traces') {
        const exported = JSON.parse(body) as {
          resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: ExportedSpan[] }[] }[];
        };
        for (const { resource, scopeSpans } of exported.resourceSpans) {
          const service = resource.attributes.find((attribute) => attribute.key === 'service.name')?.value.stringValue ?? '?';
          for (const { spans: sent } of scopeSpans) {
            for (const { traceId, spanId, parentSpanId, name, kind } of sent) spans.push({ service, traceId, spanId, parentSpanId: parentSpanId || undefined, name, kind });
          }
        }
      }
      // The same server receives the notification service's webhooks.
      if (request.url === '/hooks') webhooks.push({ body, headers: request.headers });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, webhooks, close: () => new Promise((done) => server.close(() => done())) };
}

/** The JSON log lines of a service's output. */
function logLines(service: ServiceProcess): Record<string, unknown>[] {
  return service.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
}

const SUPPORT_KEY = 'support-tool-key';
const PRODUCER_KEY = 'chat-backend-key';

/**
 * Issue 15, items 2 and 3, with the real services as processes (usage-ingest, the ledger with its consumers, relay
 * and projection, notification), the real broker and PostgreSQL, and OTLP/HTTP exported to a receiver the test
 * runs: the access log line and X-Request-Id; the request's trace id on the ledger's and the notification service's
 * log lines for the work it caused; the API key's name as the actor in the history; and one trace from
 * POST /v1/usage-events to the webhook delivery.
 */
describe('traces across Kafka, request-scoped logs and the audit actor', () => {
  const { env, topics } = ledgerTestSettings();
  const services: ServiceProcess[] = [];
  const drops: (() => Promise<void>)[] = [];
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let ledger: ServiceProcess;
  let ingest: ServiceProcess;
  let notification: ServiceProcess;

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    await createTopics(topics);
    const common = {
      ...env,
      API_KEYS: JSON.stringify([
        { name: 'support-tool', sha256: hashApiKey(SUPPORT_KEY), scopes: ['grants:write', 'purchases:write', 'holds:write', 'notifications:write', 'accounts:read'] },
        { name: 'chat-backend', sha256: hashApiKey(PRODUCER_KEY), scopes: ['usage:write'] },
      ]),
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    };
    const notificationEnv = {
      KAFKA_GROUP_ID: `notification-${env.CONSUMER_GROUP}`, LEDGER_DEAD_LETTER_TOPIC: env.LEDGER_DLQ_TOPIC, WEBHOOK_HTTP_ALLOWLIST: '127.0.0.1', DISPATCH_INTERVAL_MS: '100',
    };
    for (const app of ['ledger', 'usage-ingest', 'notification'] as const) {
      const schema = await createTestSchema(`${app.replace('-', '_')}_trace`);
      drops.push(schema.drop);
      const own = app === 'ledger' ? { LOG_LEVEL: 'debug' } : app === 'notification' ? notificationEnv : {};
      const service = await startServiceProcess(app, { ...common, LOG_LEVEL: 'info', DATABASE_SCHEMA: schema.schema, ...own }, 90_000);
      services.push(service);
      if (app === 'ledger') ledger = service;
      else if (app === 'usage-ingest') ingest = service;
      else notification = service;
    }
  }, 200_000);

  afterAll(async () => {
    for (const service of services) await service.kill();
    for (const drop of drops) await drop();
    await otlp?.close();
  });

  const transactions = async (accountId: string) => {
    const response = await fetch(`${ledger.base}/v1/accounts/${accountId}/transactions`, { headers: { authorization: `Bearer ${SUPPORT_KEY}` } });
    return response.status === 200 ? ((await response.json()) as { items: { type: string; actor: string | null }[] }).items : [];
  };

  it('one access line per request with the echoed request id, and the key name as the actor of grants, purchases, holds and releases in the history', async () => {
    const granted = await fetch(`${ledger.base}/v1/accounts/acct-audit/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SUPPORT_KEY}`, 'content-type': 'application/json', 'x-request-id': 'grant-req-1' },
      body: JSON.stringify({ idempotencyKey: 'welcome', amount: '10', reason: 'welcome bonus' }),
    });
    expect(granted.status).toBe(201);
    expect(granted.headers.get('x-request-id')).toBe('grant-req-1');
    // No X-Request-Id and no traceparent: one is made up, and still echoed.
    const health = await fetch(`${ledger.base}/health/live`);
    expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const history = await waitFor(async () => {
      const items = await transactions('acct-audit');
      return items.length > 0 ? items : undefined;
    });
    expect(history).toEqual([expect.objectContaining({ type: 'CreditsGranted', actor: 'support-tool' })]);

    // Every money-changing command records its key: a purchase, a hold and its release too.
    const write = (method: string, path: string, body?: object) =>
      fetch(`${ledger.base}/v1/accounts/acct-audit${path}`, {
        method, headers: { authorization: `Bearer ${SUPPORT_KEY}`, ...(body && { 'content-type': 'application/json' }) }, ...(body && { body: JSON.stringify(body) }),
      });
    expect((await write('POST', '/purchases', { paymentReference: 'pay-audit', amount: '2' })).status).toBe(201);
    expect((await write('POST', '/authorizations', { amount: '1', hold: { holdId: 'h-audit', ttlSeconds: 600 } })).status).toBe(200);
    expect((await write('DELETE', '/holds/h-audit')).status).toBe(200);
    const all = await waitFor(async () => {
      const items = await transactions('acct-audit');
      return items.length >= 4 ? items : undefined;
    });
    expect(all.map(({ type, actor }) => ({ type, actor }))).toEqual([
      { type: 'HoldReleased', actor: 'support-tool' },
      { type: 'HoldPlaced', actor: 'support-tool' },
      { type: 'CreditsGranted', actor: 'support-tool' },
      { type: 'CreditsGranted', actor: 'support-tool' },
    ]);

    const access = logLines(ledger).filter((line) => line.msg === 'request completed' && line.requestId === 'grant-req-1');
    expect(access).toEqual([
      expect.objectContaining({ method: 'POST', route: '/v1/accounts/:accountId/grants', status: 201, actor: 'support-tool', traceId: expect.stringMatching(/^[0-9a-f]{32}$/) }),
    ]);
  });

  it('one trace from POST /v1/usage-events through the ledger consumer, its append, the relay, the projection and the notification delivery; the ledger logs the message with the request trace id', async () => {
    // An account with a webhook, and 1 µcr: the usage depletes it, so the ledger announces CreditsDepleted (in
    // the same decision as the debit, so in the same trace) and the notification service delivers an alert.
    const settings = await fetch(`${notification.base}/v1/accounts/acct-trace/notification-settings`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${SUPPORT_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ webhookUrl: `${otlp.url}/hooks`, webhookSecret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` }),
    });
    expect(settings.status).toBe(200);
    const granted = await fetch(`${ledger.base}/v1/accounts/acct-trace/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SUPPORT_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ idempotencyKey: 'tiny', amount: '0.000001', reason: 'test grant' }),
    });
    expect(granted.status).toBe(201);

    const traceId = 'ab12cd34ef56ab12cd34ef56ab12cd34';
    const callerSpan = '1234567890abcdef';
    const reported = await fetch(`${ingest.base}/v1/usage-events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PRODUCER_KEY}`, 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify({ id: 'traced-1', accountId: 'acct-trace', occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300 }),
    });
    expect(reported.status).toBe(202);
    // No X-Request-Id: the request id is the caller's trace id.
    expect(reported.headers.get('x-request-id')).toBe(traceId);

    // Who did it: the producer's key name travels in the envelope and lands on the debit.
    const debit = await waitFor(async () => (await transactions('acct-trace')).find((item) => item.type === 'UsageDebited'));
    expect(debit.actor).toBe('chat-backend');

    // The ledger's line for this message, written while consuming it, carries the HTTP request's trace id.
    const applied = await waitFor(async () => logLines(ledger).find((line) => line.msg === 'command applied' && line.messageId === 'traced-1'));
    expect(applied).toMatchObject({ traceId, requestId: traceId });
    const ingestAccess = logLines(ingest).find((line) => line.msg === 'request completed' && line.route === '/v1/usage-events');
    expect(ingestAccess).toMatchObject({ traceId, requestId: traceId, status: 202, actor: 'chat-backend' });
    // So does the notification service's, for the alert it queued and delivered, two Kafka hops and a table later.
    const delivered = await waitFor(async () => logLines(notification).find((line) => line.msg === 'webhook delivered' && line.accountId === 'acct-trace'), 30_000);
    expect(delivered).toMatchObject({ traceId, requestId: traceId });
    const webhook = otlp.webhooks.find(({ body }) => body.includes('acct-trace'));
    expect(webhook).toBeDefined();
    // The receiver can join the trace too: the webhook carries the request id and the delivery span's traceparent.
    expect(webhook?.headers['x-request-id']).toBe(traceId);

    const inTrace = (service: string, name: string) => otlp.spans.filter((span) => span.traceId === traceId && span.service === service && span.name === name);
    const spans = await waitFor(() => {
      const found = {
        server: inTrace('usage-ingest', 'POST /v1/usage-events'),
        produce: inTrace('usage-ingest', `${env.USAGE_EVENTS_TOPIC} publish`),
        consume: inTrace('ledger', `${env.USAGE_EVENTS_TOPIC} process`),
        relay: inTrace('ledger', `${env.LEDGER_EVENTS_TOPIC} publish`),
        project: inTrace('ledger', `${env.LEDGER_EVENTS_TOPIC} process`),
        notify: inTrace('notification', `${env.LEDGER_EVENTS_TOPIC} process`),
        deliver: inTrace('notification', 'notification deliver webhook'),
      };
      return Object.values(found).every((list) => list.length > 0) ? found : undefined;
    }, 30_000);
    // Parent/child across every hop: caller → HTTP server → Kafka publish → ledger consume (decide + append) →
    // relay publish, one per event of the decision (from the stored event's metadata) → projection and
    // notification consume → the webhook delivery (from the delivery row).
    const one = <T>(list: T[]): T => {
      expect(list).toHaveLength(1);
      return list[0];
    };
    const server = one(spans.server);
    const produce = one(spans.produce);
    const consume = one(spans.consume);
    expect(server.parentSpanId).toBe(callerSpan);
    expect(produce.parentSpanId).toBe(server.spanId);
    expect(consume.parentSpanId).toBe(produce.spanId);
    expect(spans.relay.length).toBeGreaterThanOrEqual(2); // UsageDebited and CreditsDepleted at least
    for (const relayed of spans.relay) expect(relayed.parentSpanId).toBe(consume.spanId);
    const relayIds = spans.relay.map((span) => span.spanId);
    for (const consumed of [...spans.project, ...spans.notify]) expect(relayIds).toContain(consumed.parentSpanId);
    const deliver = one(spans.deliver);
    expect(spans.notify.map((span) => span.spanId)).toContain(deliver.parentSpanId);
    expect(webhook?.headers.traceparent).toBe(`00-${traceId}-${deliver.spanId}-01`);
  }, 120_000);
});

/**
 * Tracing off (the default, no OTEL_* set): nothing is recorded, but the request id and a caller's trace context are
 * still passed along (Kafka headers, the event's metadata), so the ledger's lines and the relay's messages name them.
 */
describe('request-scoped logs with tracing off', () => {
  const { env, topics } = ledgerTestSettings();
  const services: ServiceProcess[] = [];
  const drops: (() => Promise<void>)[] = [];
  let ledger: ServiceProcess;
  let ingest: ServiceProcess;

  beforeAll(async () => {
    await createTopics(topics);
    const common = { ...env, API_KEYS: JSON.stringify([{ name: 'chat-backend', sha256: hashApiKey(PRODUCER_KEY), scopes: ['usage:write', 'accounts:read'] }]) };
    for (const app of ['ledger', 'usage-ingest'] as const) {
      const schema = await createTestSchema(`${app.replace('-', '_')}_untraced`);
      drops.push(schema.drop);
      const service = await startServiceProcess(app, { ...common, DATABASE_SCHEMA: schema.schema, LOG_LEVEL: app === 'ledger' ? 'debug' : 'info' }, 90_000);
      services.push(service);
      if (app === 'ledger') ledger = service;
      else ingest = service;
    }
  }, 200_000);

  afterAll(async () => {
    for (const service of services) await service.kill();
    for (const drop of drops) await drop();
  });

  it('passes the request id and the caller\'s traceparent through usage-ingest, the ledger and the relay', async () => {
    const traceId = '0123456789abcdef0123456789abcdef';
    const traceparent = `00-${traceId}-fedcba9876543210-01`;
    const relayed = await collect(env.LEDGER_EVENTS_TOPIC);
    try {
      const reported = await fetch(`${ingest.base}/v1/usage-events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${PRODUCER_KEY}`, 'content-type': 'application/json', traceparent, 'x-request-id': 'req-untraced-1' },
        body: JSON.stringify({ id: 'untraced-1', accountId: 'acct-untraced', occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 1 }),
      });
      expect(reported.status).toBe(202);
      expect(reported.headers.get('x-request-id')).toBe('req-untraced-1');
      const applied = await waitFor(async () => logLines(ledger).find((line) => line.msg === 'command applied' && line.messageId === 'untraced-1'), 30_000);
      // No span of its own (off): the caller's span id is passed on unchanged.
      expect(applied).toMatchObject({ requestId: 'req-untraced-1', traceId, spanId: 'fedcba9876543210' });
      const published = await waitFor(() => relayed.messages.find((message) => message.value.includes('"UsageDebited"')), 30_000);
      expect(published.headers).toMatchObject({ traceparent, 'x-request-id': 'req-untraced-1' });
      expect(JSON.parse(published.value)).toMatchObject({ actor: 'chat-backend' });
    } finally {
      await relayed.stop();
    }
  }, 90_000);
});
