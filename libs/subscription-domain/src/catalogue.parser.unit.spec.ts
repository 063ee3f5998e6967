// The spec reads the shipped file; the library itself does no I/O.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCatalogue } from './catalogue.parser';
import { SubscriptionError } from './subscription.errors';

const shipped = readFileSync(join(__dirname, '../../../config/plans.yaml'), 'utf8');

const withPlan = (plan: string, extra = ''): string => `
version: "t"
fallbackPlanId: free
plans:
  - { id: free, name: Free, price: "0", interval: monthly, creditsPerMonth: "100", overdraftPolicy: write-off, rank: 0 }
  - ${plan}
${extra}`;
const good = '{ id: p, name: P, price: "9.99", interval: monthly, creditsPerMonth: "10", overdraftPolicy: carry, rank: 1 }';

function rejection(yamlText: string): SubscriptionError {
  try {
    parseCatalogue(yamlText);
  } catch (error) {
    expect(error).toBeInstanceOf(SubscriptionError);
    return error as SubscriptionError;
  }
  throw new Error('expected the catalogue to be rejected');
}

describe('parseCatalogue', () => {
  it('parses the shipped catalogue', () => {
    const catalogue = parseCatalogue(shipped);
    const credits = (id: string) => catalogue.plans.get(id)?.creditsPerMonth;

    expect(catalogue.version).toBe('2026-11-01');
    expect(catalogue.fallbackPlanId).toBe('free');
    expect([credits('free'), credits('starter'), credits('pro')]).toEqual([100_000_000n, 1_000_000_000n, 2_500_000_000n]);
    expect([credits('go'), credits('plus'), credits('pro-max')]).toEqual([7_000_000n, 25_000_000n, 75_000_000n]);
    expect([credits('solo'), credits('business'), credits('agency')]).toEqual([980_000_000n, 2_200_000_000n, 4_500_000_000n]);
    expect(catalogue.plans.get('go')).toEqual({
      id: 'go',
      name: 'Go',
      price: '29',
      priceCents: 2900n,
      interval: 'monthly',
      creditsPerMonth: 7_000_000n,
      unlimited: false,
      alertThresholds: [20, 5],
      overdraftPolicy: 'carry',
      rank: 30,
      retired: false,
    });
    expect(catalogue.plans.get('custom')).toMatchObject({ unlimited: true, creditsPerMonth: 0n, alertThresholds: [] });
    expect([...catalogue.plans.values()].filter((plan) => plan.interval === 'yearly').length).toBeGreaterThanOrEqual(2);
    expect(catalogue.plans.get('starter-yearly')).toMatchObject({ price: '99.90', priceCents: 9990n });
    expect([...catalogue.packs.values()]).toEqual([
      { id: 'pack-1000', credits: 1_000_000_000n, price: '10', priceCents: 1000n },
      { id: 'pack-5000', credits: 5_000_000_000n, price: '45', priceCents: 4500n },
    ]);
  });

  it('accepts an allowance and a pack of exactly the per-amount bound (1,000,000,000 credits)', () => {
    const catalogue = parseCatalogue(withPlan(good.replace('"10"', '"1000000000"'), 'packs:\n  - { id: k, credits: "1000000000", price: "1" }'));
    expect(catalogue.plans.get('p')?.creditsPerMonth).toBe(1_000_000_000_000_000n);
    expect(catalogue.packs.get('k')?.credits).toBe(1_000_000_000_000_000n);
  });

  it('accepts custom thresholds, highest first', () => {
    expect(parseCatalogue(withPlan(good.replace('rank: 1', 'rank: 1, alertThresholds: [50, 10, 1]'))).plans.get('p')?.alertThresholds).toEqual([50, 10, 1]);
    const ten = [90, 80, 70, 60, 50, 40, 30, 20, 10, 5];
    expect(parseCatalogue(withPlan(good.replace('rank: 1', `rank: 1, alertThresholds: [${ten.join(', ')}]`))).plans.get('p')?.alertThresholds).toEqual(ten);
  });

  it.each([
    ['an unknown plan key', withPlan(good.replace('rank: 1', 'rank: 1, trial: "7"')), 'plans[1].trial'],
    ['an unknown root key', withPlan(good, 'currency: USD'), 'currency'],
    ['a missing name', withPlan(good.replace('name: P, ', '')), 'plans[1].name'],
    ['a price with cents beyond 2 decimals', withPlan(good.replace('"9.99"', '"9.999"')), 'plans[1].price'],
    ['a negative price', withPlan(good.replace('"9.99"', '"-1"')), 'plans[1].price'],
    ['credits that are not decimal', withPlan(good.replace('"10"', '"ten"')), 'plans[1].creditsPerMonth'],
    ['negative credits', withPlan(good.replace('"10"', '"-10"')), 'plans[1].creditsPerMonth'],
    ['an allowance above the per-amount bound', withPlan(good.replace('"10"', '"1000000000.000001"')), 'plans[1].creditsPerMonth'],
    ['an allowance of 23 digits', withPlan(good.replace('"10"', '"99999999999999999999999"')), 'plans[1].creditsPerMonth'],
    ['a pack above the per-amount bound', withPlan(good, 'packs:\n  - { id: k, credits: "1000000001", price: "1" }'), 'packs[0].credits'],
    ['a missing allowance', withPlan(good.replace('creditsPerMonth: "10", ', '')), 'plans[1].creditsPerMonth'],
    ['an allowance on an unlimited plan', withPlan(good.replace('rank: 1', 'rank: 1, unlimited: true')), 'plans[1].creditsPerMonth'],
    ['an unlimited flag that is not boolean', withPlan(good.replace('rank: 1', 'rank: 1, unlimited: yes')), 'plans[1].unlimited'],
    ['a retired flag that is not boolean', withPlan(good.replace('rank: 1', 'rank: 1, retired: soon')), 'plans[1].retired'],
    ['an unknown interval', withPlan(good.replace('monthly', 'weekly')), 'plans[1].interval'],
    ['an unknown overdraft policy', withPlan(good.replace('carry', 'forgive')), 'plans[1].overdraftPolicy'],
    ['a fractional rank', withPlan(good.replace('rank: 1', 'rank: 1.5')), 'plans[1].rank'],
    ['a missing rank', withPlan(good.replace(', rank: 1', '')), 'plans[1].rank'],
    ['a threshold out of range', withPlan(good.replace('rank: 1', 'rank: 1, alertThresholds: [120]')), 'plans[1].alertThresholds[0]'],
    ['thresholds lowest first', withPlan(good.replace('rank: 1', 'rank: 1, alertThresholds: [5, 20]')), 'plans[1].alertThresholds[1]'],
    // CycleStarted and PlanChanged carry at most 10 (subscription.events.v1): an 11th would make every renewal of the plan unpublishable.
    ['more than 10 thresholds', withPlan(good.replace('rank: 1', 'rank: 1, alertThresholds: [90, 80, 70, 60, 50, 40, 30, 20, 10, 5, 1]')), 'plans[1].alertThresholds'],
    ['a bad id', withPlan(good.replace('id: p', 'id: "Pro Plan"')), 'plans[1].id'],
    ['a duplicate plan id', withPlan(good.replace('id: p', 'id: free')), 'plans[1].id'],
    ['a pack with the id of a plan', withPlan(good, 'packs:\n  - { id: p, credits: "1", price: "1" }'), 'packs[0].id'],
    ['a pack without credits', withPlan(good, 'packs:\n  - { id: k, credits: "0", price: "1" }'), 'packs[0].credits'],
    ['a pack with an unknown key', withPlan(good, 'packs:\n  - { id: k, credits: "1", price: "1", expires: "never" }'), 'packs[0].expires'],
    ['a fallback plan that does not exist', withPlan(good).replace('fallbackPlanId: free', 'fallbackPlanId: gone'), 'fallbackPlanId'],
    ['a fallback plan that is not free', withPlan(good).replace('fallbackPlanId: free', 'fallbackPlanId: p'), 'fallbackPlanId'],
    ['a retired fallback plan', withPlan(good).replace('rank: 0 }', 'rank: 0, retired: true }'), 'fallbackPlanId'],
    ['no plans', 'version: "t"\nfallbackPlanId: free\nplans: []', 'plans'],
    ['a missing version', withPlan(good).replace('version: "t"', ''), 'version'],
    ['not YAML', 'plans: [', '(root)'],
  ])('rejects %s, naming the path', (_case, yamlText, field) => {
    const error = rejection(yamlText);
    expect(error.code).toBe('INVALID_CATALOGUE');
    expect(error.details.field).toBe(field);
    expect(error.message).toContain(field);
  });
});
