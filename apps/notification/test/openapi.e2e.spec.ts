import { AUTH_STATUS_BY_CODE } from '@tally/shared';
import { OpenApiContract, catalogueProblems, conformanceProblems, createTestSchema } from '@tally/testing';
import { WRITER_KEY, bootApp, ledgerTopic, newWebhookSecret, type RunningApp } from './notification.harness';
import { NOTIFICATION_STATUS_BY_CODE } from '../src/notification.errors';

const ACCOUNT = 'acct-openapi';

/** The real service answers only what its OpenAPI document (served at /docs-json) describes. */
describe('the notification service and its OpenAPI document', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let running: RunningApp;
  let contract: OpenApiContract;

  beforeAll(async () => {
    schema = await createTestSchema('notification_openapi');
    ledger = await ledgerTopic();
    running = await bootApp({ DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group });
    contract = await OpenApiContract.served(running.baseUrl);
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await schema?.drop();
  });

  it('answers valid and invalid requests to every operation only as the document describes', async () => {
    const settings = `/v1/accounts/${ACCOUNT}/notification-settings`;
    const problems = await conformanceProblems(contract, running.baseUrl, WRITER_KEY, {
      putNotificationSettings: [
        { path: settings, body: { email: 'ops@example.com', webhookUrl: 'https://hooks.example.com/tally', webhookSecret: newWebhookSecret(), notificationTypes: { low_credit: true } } },
        { path: settings, body: { email: null, webhookUrl: null } },
      ],
      getNotificationSettings: [{ path: settings }],
      listNotifications: [{ path: `/v1/accounts/${ACCOUNT}/notifications?limit=10` }],
    });
    expect(problems).toEqual([]);
  });

  it("documents each of the service's error codes under the status its error filter answers it with", () => {
    expect(catalogueProblems(contract, { ...AUTH_STATUS_BY_CODE, ...NOTIFICATION_STATUS_BY_CODE })).toEqual([]);
  });
});
