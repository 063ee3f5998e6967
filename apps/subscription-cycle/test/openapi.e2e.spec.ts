import { AUTH_STATUS_BY_CODE, ManualClock } from '@tally/shared';
import { OpenApiContract, catalogueProblems, conformanceProblems, createTestSchema } from '@tally/testing';
import { WRITER_KEY, startApp, testTopic, type TestApp } from './subscription-cycle.harness';
import { SUBSCRIPTION_CYCLE_STATUS_BY_CODE } from '../src/subscription-cycle.errors';

const ACCOUNT = 'acct-openapi';

/** The real service answers only what its OpenAPI document (served at /docs-json) describes. */
describe('subscription-cycle and its OpenAPI document', () => {
  const clock = new ManualClock(new Date('2031-03-10T08:00:00.000Z'));
  let dropSchema: () => Promise<void>;
  let service: TestApp;
  let contract: OpenApiContract;

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('sc_openapi');
    dropSchema = drop;
    service = await startApp({ schema, topic: testTopic(), clock });
    contract = await OpenApiContract.served(service.baseUrl);
  });

  afterAll(async () => {
    await service?.app.close();
    await dropSchema?.();
  });

  it('answers valid and invalid requests to every operation only as the document describes', async () => {
    const subscription = `/v1/accounts/${ACCOUNT}/subscription`;
    const problems = await conformanceProblems(contract, service.baseUrl, WRITER_KEY, {
      listPlans: [{ path: '/v1/plans' }],
      putSubscription: [{ path: subscription, body: { planId: 'pro', interval: 'monthly', timeZone: 'Europe/Paris' } }],
      getSubscription: [{ path: subscription }],
      cancelSubscription: [{ path: subscription }],
    });
    expect(problems).toEqual([]);
  });

  it("documents each of the service's error codes under the status its error filter answers it with", () => {
    expect(catalogueProblems(contract, { ...AUTH_STATUS_BY_CODE, ...SUBSCRIPTION_CYCLE_STATUS_BY_CODE })).toEqual([]);
  });
});
