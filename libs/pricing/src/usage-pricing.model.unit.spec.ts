// The spec reads the shipped file; the library itself does no I/O.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { MAX_AMOUNT_MICROS } from '@tally/money';
import { PricingError } from './pricing.errors';
import { parseRateCard } from './rate-card.parser';
import type { UsageToPrice } from './rate-card.model';
import { canPrice, priceUsage } from './usage-pricing.model';

const card = parseRateCard(readFileSync(join(__dirname, '../../../config/rate-card.yaml'), 'utf8'));
const now = new Date('2026-11-21T12:00:00Z');
const june = new Date('2026-07-15T12:00:00Z');

function failure(usage: UsageToPrice, at = now): PricingError {
  const error = canPrice(card, usage, at);
  if (!error) throw new Error('expected the usage to be unpriceable');
  expect(() => priceUsage(card, usage, at)).toThrow(PricingError);
  return error;
}

describe('priceUsage', () => {
  it('prices chat tokens exactly: gpt-4o 1234 in + 567 out', () => {
    // 1234 × 2.5 / 1e6 = 0.003085 and 567 × 10 / 1e6 = 0.00567 → 0.008755 credits
    expect(priceUsage(card, { feature: 'chat', model: 'gpt-4o', inputTokens: 1234, outputTokens: 567 }, now)).toEqual({
      amount: 8_755n,
      rateCardVersion: '2026-11-01',
      lines: [{ model: 'gpt-4o', feature: 'chat', inputTokens: 1234, outputTokens: 567, amount: 8_755n }],
    });
  });

  it('rounds up once to a whole micro-credit', () => {
    // 1001 × 0.15 + 3 × 0.6 = 151.95 µcr → 152
    expect(priceUsage(card, { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 1001, outputTokens: 3 }, now).amount).toBe(152n);
    // a single input token of gpt-4o-mini is 0.15 µcr: never free
    expect(priceUsage(card, { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 1, outputTokens: 0 }, now).amount).toBe(1n);
    expect(priceUsage(card, { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 0, outputTokens: 0 }, now).amount).toBe(0n);
  });

  it('prices agent turns with the agent prices of the model', () => {
    expect(priceUsage(card, { feature: 'agent', model: 'claude-opus-4', inputTokens: 10_000, outputTokens: 2_000 }, now)).toMatchObject({
      amount: 300_000n, // 10k × 15 / 1e6 + 2k × 75 / 1e6 = 0.15 + 0.15
      lines: [{ model: 'claude-opus-4', feature: 'agent', amount: 300_000n }],
    });
  });

  it('prices images by model and resolution', () => {
    expect(priceUsage(card, { feature: 'image', model: 'dall-e-3', images: 3, resolution: '1024x1792' }, now)).toEqual({
      amount: 240_000n,
      rateCardVersion: '2026-11-01',
      lines: [{ model: 'dall-e-3', feature: 'image', images: 3, resolution: '1024x1792', amount: 240_000n }],
    });
  });

  it('prices video by the second with the version in effect at the usage time', () => {
    const usage: UsageToPrice = { feature: 'video', model: 'veo-3', videoSeconds: 8 };
    expect(priceUsage(card, usage, june)).toMatchObject({ amount: 6_000_000n, rateCardVersion: '2026-06-01' });
    expect(priceUsage(card, usage, now)).toMatchObject({ amount: 3_200_000n, rateCardVersion: '2026-11-01' });
  });

  it('uses the price in effect at the instant, to the millisecond', () => {
    const usage: UsageToPrice = { feature: 'chat', model: 'o3', inputTokens: 1_000_000, outputTokens: 0 };
    expect(priceUsage(card, usage, new Date('2026-10-31T23:59:59.999Z')).amount).toBe(10_000_000n);
    expect(priceUsage(card, usage, new Date('2026-11-01T00:00:00.000Z')).amount).toBe(2_000_000n);
  });

  it('prices a council answer as one debit with one line per model whose shares sum to the total', () => {
    const priced = priceUsage(
      card,
      {
        feature: 'council',
        responses: [
          { model: 'gpt-4o', inputTokens: 1000, outputTokens: 500 }, // 7500 µcr exactly
          { model: 'claude-haiku-3.5', inputTokens: 333, outputTokens: 77 }, // 574.4
          { model: 'gemini-2.5-flash', inputTokens: 333, outputTokens: 77 }, // 292.4
          { model: 'llama-3.3-70b', inputTokens: 7, outputTokens: 3 }, // 6.5
        ],
      },
      now,
    );
    // 8373.3 µcr rounded up once → 8374 (rounding each line would have charged 8375)
    expect(priced.amount).toBe(8_374n);
    expect(priced.lines.map((line) => [line.model, line.feature, line.amount])).toEqual([
      ['gpt-4o', 'council', 7_500n],
      ['claude-haiku-3.5', 'council', 575n], // ties broken by order: first of the two 0.4 remainders
      ['gemini-2.5-flash', 'council', 292n],
      ['llama-3.3-70b', 'council', 7n], // largest remainder (0.5)
    ]);
    expect(priced.lines.reduce((sum, line) => sum + line.amount, 0n)).toBe(priced.amount);
  });

  it('merges the answers of a model that answered twice in a council into one line', () => {
    const priced = priceUsage(
      card,
      {
        feature: 'council',
        responses: [
          { model: 'gpt-4o', inputTokens: 1, outputTokens: 0 },
          { model: 'o3', inputTokens: 1, outputTokens: 0 },
          { model: 'gpt-4o', inputTokens: 1, outputTokens: 0 },
        ],
      },
      now,
    );
    // gpt-4o 2 × 2.5 = 5 µcr, o3 2 µcr
    expect(priced.lines).toEqual([
      { model: 'gpt-4o', feature: 'council', inputTokens: 2, outputTokens: 0, amount: 5n },
      { model: 'o3', feature: 'council', inputTokens: 1, outputTokens: 0, amount: 2n },
    ]);
  });

  it('always charges the exact cost rounded up once, split into shares that sum to it (property)', () => {
    const chatModels = [...(card.versions[1].models.entries())].filter(([, prices]) => prices.chat).map(([model]) => model);
    const tokens = fc.integer({ min: 0, max: 2_000_000 });
    fc.assert(
      fc.property(
        fc.array(fc.record({ model: fc.constantFrom(...chatModels), inputTokens: tokens, outputTokens: tokens }), { minLength: 1, maxLength: 8 }),
        (responses) => {
          const priced = priceUsage(card, { feature: 'council', responses }, now);
          const exact = responses.reduce((sum, r) => {
            const chat = card.versions[1].models.get(r.model)?.chat;
            return sum + (chat?.inputPerMillion ?? 0n) * BigInt(r.inputTokens) + (chat?.outputPerMillion ?? 0n) * BigInt(r.outputTokens);
          }, 0n);
          expect(priced.amount * 1_000_000n >= exact).toBe(true);
          expect(priced.amount * 1_000_000n - exact < 1_000_000n).toBe(true);
          expect(priced.lines.reduce((sum, line) => sum + line.amount, 0n)).toBe(priced.amount);
          expect(priced.lines.every((line) => line.amount >= 0n)).toBe(true);
          expect(new Set(priced.lines.map((line) => line.model)).size).toBe(priced.lines.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('handles token counts far beyond 32 bits exactly', () => {
    const tokens = 66_666_666_666_666; // × 15 µcr per token = 999,999,999,999,990 µcr, just within the per-amount bound
    const priced = priceUsage(card, { feature: 'chat', model: 'claude-opus-4', inputTokens: tokens, outputTokens: 0 }, now);
    expect(priced.amount).toBe(BigInt(tokens) * 15n); // 15 credits per million = 15 µcr per token
  });

  it('prices a usage event of exactly the per-amount bound', () => {
    // veo-3 at 0.4 credits a second on the current card: 2,500,000,000 s = 1,000,000,000 credits
    expect(priceUsage(card, { feature: 'video', model: 'veo-3', videoSeconds: 2_500_000_000 }, now).amount).toBe(MAX_AMOUNT_MICROS);
  });
});

describe('a price above the per-amount bound (MAX_AMOUNT_MICROS)', () => {
  it.each<[string, UsageToPrice, Date, string]>([
    ['the longest video the contract allows, at 0.75 credits a second', { feature: 'video', model: 'veo-3', videoSeconds: 2_147_483_647 }, june, 'videoSeconds'],
    ['one second more than the bound buys', { feature: 'video', model: 'veo-3', videoSeconds: 2_500_000_001 }, now, 'videoSeconds'],
    ['output tokens beyond float precision', { feature: 'chat', model: 'claude-opus-4', inputTokens: 10, outputTokens: Number.MAX_SAFE_INTEGER }, now, 'outputTokens'],
    ['input tokens beyond float precision', { feature: 'agent', model: 'gpt-4o-mini', inputTokens: Number.MAX_SAFE_INTEGER, outputTokens: 0 }, now, 'inputTokens'],
    ['images', { feature: 'image', model: 'dall-e-3', images: 2 ** 52, resolution: '1024x1024' }, now, 'images'],
    [
      'one council member',
      { feature: 'council', responses: [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }, { model: 'o3', inputTokens: 0, outputTokens: 2 ** 52 }] },
      now,
      'responses.1.outputTokens',
    ],
  ])('is refused with AMOUNT_OUT_OF_RANGE naming the costliest field: %s', (_case, usage, at, field) => {
    const error = failure(usage, at);
    expect(error.code).toBe('AMOUNT_OUT_OF_RANGE');
    expect(error.details).toMatchObject({ field, max: '1000000000' });
    expect(error.message).toMatch(/above the bound of 1000000000 credits/);
  });
});

describe('what cannot be priced', () => {
  it.each<[string, UsageToPrice, string, Record<string, unknown>]>([
    ['an unknown chat model', { feature: 'chat', model: 'gpt-9', inputTokens: 1, outputTokens: 1 }, 'UNKNOWN_MODEL', { field: 'model', model: 'gpt-9' }],
    ['an image model asked to chat', { feature: 'chat', model: 'dall-e-3', inputTokens: 1, outputTokens: 1 }, 'UNPRICEABLE', { field: 'feature', model: 'dall-e-3' }],
    ['a model without agent prices', { feature: 'agent', model: 'llama-3.3-70b', inputTokens: 1, outputTokens: 1 }, 'UNPRICEABLE', { field: 'feature', model: 'llama-3.3-70b' }],
    ['a chat model asked for video', { feature: 'video', model: 'gpt-4o', videoSeconds: 3 }, 'UNPRICEABLE', { field: 'feature', model: 'gpt-4o' }],
    ['an unknown resolution', { feature: 'image', model: 'dall-e-3', images: 1, resolution: '4096x4096' }, 'UNKNOWN_RESOLUTION', { field: 'resolution', model: 'dall-e-3' }],
    ['an unknown council model', { feature: 'council', responses: [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }, { model: 'nope', inputTokens: 1, outputTokens: 1 }] }, 'UNKNOWN_MODEL', { field: 'responses.1.model', model: 'nope' }],
    ['a council member that cannot chat', { feature: 'council', responses: [{ model: 'sora', inputTokens: 1, outputTokens: 1 }] }, 'UNPRICEABLE', { field: 'responses.0.model', model: 'sora' }],
    ['an empty council', { feature: 'council', responses: [] }, 'INVALID_USAGE', { field: 'responses' }],
    ['an unknown feature', { feature: 'audio' as UsageToPrice['feature'], model: 'gpt-4o' }, 'UNPRICEABLE', { field: 'feature' }],
    ['a missing model', { feature: 'chat', inputTokens: 1, outputTokens: 1 }, 'INVALID_USAGE', { field: 'model' }],
    ['missing output tokens', { feature: 'chat', model: 'gpt-4o', inputTokens: 1 }, 'INVALID_USAGE', { field: 'outputTokens' }],
    ['negative tokens', { feature: 'chat', model: 'gpt-4o', inputTokens: -1, outputTokens: 1 }, 'INVALID_USAGE', { field: 'inputTokens' }],
    ['fractional seconds', { feature: 'video', model: 'sora', videoSeconds: 1.5 }, 'INVALID_USAGE', { field: 'videoSeconds' }],
    ['unsafe integers', { feature: 'image', model: 'dall-e-3', images: 2 ** 53, resolution: '1024x1024' }, 'INVALID_USAGE', { field: 'images' }],
    ['a missing resolution', { feature: 'image', model: 'dall-e-3', images: 1 }, 'INVALID_USAGE', { field: 'resolution' }],
    ['council tokens that are not integers', { feature: 'council', responses: [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 0.5 }] }, 'INVALID_USAGE', { field: 'responses.0.outputTokens' }],
  ])('%s', (_case, usage, code, details) => {
    const error = failure(usage);
    expect(error.code).toBe(code);
    expect(error.details).toMatchObject(details);
  });

  it.each<[string, UsageToPrice]>([
    ['an unknown model', { feature: 'chat', model: 'zq7echo7qz', inputTokens: 1, outputTokens: 1 }],
    ['an unknown council model', { feature: 'council', responses: [{ model: 'zq7echo7qz', inputTokens: 1, outputTokens: 1 }] }],
    ['an unknown resolution', { feature: 'image', model: 'dall-e-3', images: 1, resolution: 'zq7echo7qz' }],
    ['a count that is text', { feature: 'chat', model: 'gpt-4o', inputTokens: 'zq7echo7qz' as unknown as number, outputTokens: 1 }],
  ])('names the field, and its message quotes none of what was sent: %s (HTTP callers see the message)', (_case, usage) => {
    const error = failure(usage);
    expect(error.message).not.toContain('zq7echo7qz');
    expect(error.details).toHaveProperty('field');
  });

  it('a model added in a later version cannot be priced before it', () => {
    expect(failure({ feature: 'chat', model: 'o4-mini', inputTokens: 1, outputTokens: 1 }, june).code).toBe('UNKNOWN_MODEL');
    expect(canPrice(card, { feature: 'chat', model: 'o4-mini', inputTokens: 1, outputTokens: 1 }, now)).toBeNull();
  });

  it('usage before the first rate card', () => {
    expect(failure({ feature: 'chat', model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }, new Date('2020-01-01T00:00:00Z')).code).toBe('NO_RATE_CARD');
  });
});
