import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema, uniqueSuffix, waitFor } from '@tally/testing';
import { http, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

const SHIPPED = readFileSync(resolve(__dirname, '../../../config/plans.yaml'), 'utf8');
const GO_LINE = /^ {2}- \{ id: go, .*\}$/m;

/**
 * Taking a plan out of the catalogue while accounts hold it would leave them unable to renew (the scheduler parks
 * them) or to change plan (UNKNOWN_PLAN for the plan they are on). A plan is retired instead: kept for the accounts
 * on it, no longer offered; and a catalogue that drops a plan still held does not start, naming it.
 */
describe('subscription-cycle: retiring a plan', () => {
  const clock = new ManualClock(new Date('2031-05-10T08:00:00.000Z'));
  const dir = mkdtempSync(join(tmpdir(), 'tally-plans-'));
  let schema: string;
  let dropSchema: () => Promise<void>;
  let topic: string;
  let service: TestApp | undefined;
  const holder = `acct-retired-${uniqueSuffix()}`;

  const catalogue = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const start = (plansPath: string) => startApp({ schema, topic, clock, env: { PLANS_PATH: plansPath } });

  beforeAll(async () => {
    ({ schema, drop: dropSchema } = await createTestSchema('sc_retired'));
    topic = testTopic();
    expect(SHIPPED).toMatch(GO_LINE);
    service = await start(catalogue('shipped.yaml', SHIPPED));
    expect((await http(service.baseUrl, 'PUT', `/v1/accounts/${holder}/subscription`, { planId: 'go', timeZone: 'UTC' })).status).toBe(200);
    await service.app.close();
    service = undefined;
  });

  afterAll(async () => {
    await service?.app.close();
    await dropSchema?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a catalogue without a plan some subscription holds does not start, and says which plan and how many hold it', async () => {
    const without = catalogue('without-go.yaml', SHIPPED.replace(GO_LINE, ''));
    await expect(start(without)).rejects.toThrow(/"go".*1 subscription/);
  });

  it('a retired plan renews and can be left, but is offered to nobody: PLAN_RETIRED for new subscribers and changes to it', async () => {
    const retired = catalogue('retired-go.yaml', SHIPPED.replace(GO_LINE, (line) => line.replace(', rank: 30 }', ', rank: 30, retired: true }')));
    service = await start(retired);
    const plans = (await http(service.baseUrl, 'GET', '/v1/plans')).body.plans as { id: string; retired: boolean }[];
    expect(plans.find((plan) => plan.id === 'go')).toMatchObject({ retired: true });
    expect(plans.find((plan) => plan.id === 'pro')).toMatchObject({ retired: false });

    const newcomer = await http(service.baseUrl, 'PUT', `/v1/accounts/acct-new-${uniqueSuffix()}/subscription`, { planId: 'go', timeZone: 'UTC' });
    expect(newcomer).toMatchObject({ status: 400, body: { code: 'PLAN_RETIRED', details: [expect.objectContaining({ field: 'planId' })] } });

    const held = await http(service.baseUrl, 'GET', `/v1/accounts/${holder}/subscription`);
    expect(held).toMatchObject({ status: 200, body: { planId: 'go', currentCycle: { index: 0 } } });

    // The scheduler renews it: a month later, cycle 1 of the retired plan is started (not parked).
    clock.advance(31 * 24 * 3_600_000);
    const db = service.app.get(DataSource);
    const renewed = await waitFor(async () => {
      const rows = await db.query(`SELECT plan_id, last_cycle_index FROM "${schema}".subscriptions WHERE account_id = $1`, [holder]);
      return rows[0]?.last_cycle_index === 1 ? rows[0] : undefined;
    }, 10_000);
    expect(renewed).toEqual({ plan_id: 'go', last_cycle_index: 1 });

    // Leaving it: an upgrade is immediate; coming back to it is refused.
    expect((await http(service.baseUrl, 'PUT', `/v1/accounts/${holder}/subscription`, { planId: 'plus' })).status).toBe(200);
    const back = await http(service.baseUrl, 'PUT', `/v1/accounts/${holder}/subscription`, { planId: 'go' });
    expect(back).toMatchObject({ status: 400, body: { code: 'PLAN_RETIRED' } });
  });
});
