import { ManualClock } from '@tally/shared';
import { createTestSchema, uniqueSuffix } from '@tally/testing';
import { http, PublishedMessages, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * A subscription's first cycle (and an upgrade's) starts with the request: until the ledger has its CycleStarted, the
 * account has no allowance and its holds are refused. The relay publishes it at once, as it does a renewal's, not at
 * its next interval (OUTBOX_INTERVAL_MS, up to 10 minutes).
 */
describe('the outbox relay woken by a subscription request (PostgreSQL, Kafka)', () => {
  const clock = new ManualClock(new Date('2031-03-10T08:00:00.000Z'));
  let drop: () => Promise<void>;
  let app: TestApp;
  let published: PublishedMessages;

  beforeAll(async () => {
    const created = await createTestSchema('sc_outbox_wake');
    drop = created.drop;
    const topic = testTopic();
    app = await startApp({ schema: created.schema, topic, clock, env: { OUTBOX_INTERVAL_MS: '60000', SCHEDULER_INTERVAL_MS: '60000' } });
    published = await PublishedMessages.start(topic);
  });

  afterAll(async () => {
    await published?.stop();
    await app?.app.close();
    await drop?.();
  });

  it('publishes a new subscription\'s first CycleStarted within seconds, though the relay\'s interval is a minute', async () => {
    const accountId = `acct-wake-${uniqueSuffix()}`;
    const subscribed = await http(app.baseUrl, 'PUT', `/v1/accounts/${accountId}/subscription`, { planId: 'pro', timeZone: 'Europe/Berlin' });
    expect(subscribed.status).toBe(200);
    await published.waitForCycles(accountId, 1, 10_000);
  });
});
