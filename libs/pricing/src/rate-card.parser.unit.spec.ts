// The spec reads the shipped file; the library itself does no I/O.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PricingError } from './pricing.errors';
import { parseRateCard, rateCardAt } from './rate-card.parser';

const shipped = readFileSync(join(__dirname, '../../../config/rate-card.yaml'), 'utf8');

const minimal = (models: string, extra = ''): string => `
versions:
  - version: "v1"
    effectiveFrom: "2026-01-01T00:00:00Z"${extra}
    models:
${models}
`;

function rejection(yamlText: string): PricingError {
  try {
    parseRateCard(yamlText);
  } catch (error) {
    expect(error).toBeInstanceOf(PricingError);
    return error as PricingError;
  }
  throw new Error('expected the rate card to be rejected');
}

describe('parseRateCard', () => {
  it('parses the shipped rate card into micro-credit prices', () => {
    const card = parseRateCard(shipped);

    expect(card.versions.map((v) => v.version)).toEqual(['2026-06-01', '2026-11-01']);
    const current = card.versions[1];
    expect(current.models.get('gpt-4o')?.chat).toEqual({ inputPerMillion: 2_500_000n, outputPerMillion: 10_000_000n });
    expect(current.models.get('gpt-4o')?.agent).toEqual({ inputPerMillion: 2_500_000n, outputPerMillion: 10_000_000n });
    expect(current.models.get('gpt-4o-mini')?.chat).toEqual({ inputPerMillion: 150_000n, outputPerMillion: 600_000n });
    expect(current.models.get('dall-e-3')?.image?.get('1024x1024')).toBe(40_000n);
    expect(current.models.get('veo-3')?.video).toEqual({ perSecond: 400_000n });
    for (const model of ['gpt-4.1', 'o3', 'claude-sonnet-4', 'claude-opus-4', 'claude-haiku-3.5', 'gemini-2.5-pro', 'gemini-2.5-flash', 'llama-3.3-70b', 'gpt-image-1', 'flux-pro', 'sora', 'runway-gen4']) {
      expect(current.models.has(model)).toBe(true);
    }
  });

  it('reads unquoted decimals as the exact text written, never through a float', () => {
    const card = parseRateCard(minimal('      m:\n        chat: { inputPerMillion: 0.000001, outputPerMillion: 123456789.123456 }'));
    expect(card.versions[0].models.get('m')?.chat).toEqual({ inputPerMillion: 1n, outputPerMillion: 123_456_789_123_456n });
  });

  it('accepts a price of exactly the per-amount bound', () => {
    expect(parseRateCard(minimal('      m:\n        video: { perSecond: "1000000000" }')).versions[0].models.get('m')?.video).toEqual({ perSecond: 1_000_000_000_000_000n });
  });

  it('sorts versions by effectiveFrom', () => {
    const card = parseRateCard(`
versions:
  - { version: b, effectiveFrom: "2026-02-01T00:00:00+01:00", models: { m: { video: { perSecond: "2" } } } }
  - { version: a, effectiveFrom: "2026-01-01T00:00:00Z", models: { m: { video: { perSecond: "1" } } } }
`);
    expect(card.versions.map((v) => [v.version, v.effectiveFrom.toISOString()])).toEqual([
      ['a', '2026-01-01T00:00:00.000Z'],
      ['b', '2026-01-31T23:00:00.000Z'],
    ]);
  });

  it.each([
    ['an unknown key in a model', minimal('      m:\n        chat: { inputPerMillion: "1", outputPerMillion: "1", cached: "0.5" }'), 'versions[0].models.m.chat.cached'],
    ['an unknown feature', minimal('      m:\n        audio: { perSecond: "1" }'), 'versions[0].models.m.audio'],
    ['an unknown key in a version', minimal('      m:\n        video: { perSecond: "1" }', '\n    currency: USD'), 'versions[0].currency'],
    ['a negative price', minimal('      m:\n        chat: { inputPerMillion: "-1", outputPerMillion: "1" }'), 'versions[0].models.m.chat.inputPerMillion'],
    ['an exponent', minimal('      m:\n        chat: { inputPerMillion: "1e3", outputPerMillion: "1" }'), 'versions[0].models.m.chat.inputPerMillion'],
    ['too many decimals', minimal('      m:\n        chat: { inputPerMillion: "0.0000001", outputPerMillion: "1" }'), 'versions[0].models.m.chat.inputPerMillion'],
    ['a missing price', minimal('      m:\n        chat: { inputPerMillion: "1" }'), 'versions[0].models.m.chat.outputPerMillion'],
    ['a price above the per-amount bound', minimal('      m:\n        video: { perSecond: "1000000000.000001" }'), 'versions[0].models.m.video.perSecond'],
    ['a price of 23 digits', minimal('      m:\n        image: { "1024x1024": "99999999999999999999999" }'), 'versions[0].models.m.image.1024x1024'],
    ['a price that is a list', minimal('      m:\n        video: { perSecond: ["1"] }'), 'versions[0].models.m.video.perSecond'],
    ['a bad resolution', minimal('      m:\n        image: { "big": "1" }'), 'versions[0].models.m.image.big'],
    ['an empty image table', minimal('      m:\n        image: {}'), 'versions[0].models.m.image'],
    ['a model pricing nothing', minimal('      m: {}'), 'versions[0].models.m'],
    ['no models', minimal('      {}'), 'versions[0].models'],
    ['no versions', 'versions: []', 'versions'],
    ['an unknown root key', 'version: 1\nversions: []', 'version'],
    ['an effectiveFrom without offset', minimal('      m:\n        video: { perSecond: "1" }').replace('00:00:00Z', '00:00:00'), 'versions[0].effectiveFrom'],
    ['an impossible date', minimal('      m:\n        video: { perSecond: "1" }').replace('2026-01-01', '2026-02-30'), 'versions[0].effectiveFrom'],
    // Stored on every usage (ledger.events.v1 rateCardVersion, varchar(64)): a longer one was appended, then dead-lettered by the projection.
    ['a version over 64 characters', minimal('      m:\n        video: { perSecond: "1" }').replace('version: "v1"', `version: "${'v'.repeat(65)}"`), 'versions[0].version'],
    ['a version with a control character', minimal('      m:\n        video: { perSecond: "1" }').replace('version: "v1"', 'version: "v1\\0"'), 'versions[0].version'],
    ['a missing version', minimal('      m:\n        video: { perSecond: "1" }').replace('version: "v1"', 'name: "v1"'), 'versions[0].name'],
    ['duplicate keys', minimal('      m:\n        video: { perSecond: "1" }\n      m:\n        video: { perSecond: "2" }'), '(root)'],
    ['not YAML at all', 'versions: [', '(root)'],
    ['an empty document', '', '(root)'],
  ])('rejects %s, naming the path', (_case, yamlText, field) => {
    const error = rejection(yamlText);
    expect(error.code).toBe('INVALID_RATE_CARD');
    expect(error.details.field).toBe(field);
    expect(error.message).toContain(field);
  });

  it('rejects two versions with the same name or the same effectiveFrom', () => {
    const version = (name: string, from: string) => `  - { version: ${name}, effectiveFrom: "${from}", models: { m: { video: { perSecond: "1" } } } }\n`;
    expect(rejection(`versions:\n${version('a', '2026-01-01T00:00:00Z')}${version('a', '2026-02-01T00:00:00Z')}`).details.field).toBe('versions[1].version');
    expect(rejection(`versions:\n${version('a', '2026-01-01T00:00:00Z')}${version('b', '2026-01-01T01:00:00+01:00')}`).details.field).toBe(
      'versions[1].effectiveFrom',
    );
  });
});

describe('rateCardAt', () => {
  const card = parseRateCard(shipped);

  it('picks the latest version whose effectiveFrom is not after the instant', () => {
    expect(rateCardAt(card, new Date('2026-06-01T00:00:00Z')).version).toBe('2026-06-01');
    expect(rateCardAt(card, new Date('2026-10-31T23:59:59.999Z')).version).toBe('2026-06-01');
    expect(rateCardAt(card, new Date('2026-11-01T00:00:00Z')).version).toBe('2026-11-01');
    expect(rateCardAt(card, new Date('2030-01-01T00:00:00Z')).version).toBe('2026-11-01');
  });

  it('fails with NO_RATE_CARD before the first version', () => {
    expect(() => rateCardAt(card, new Date('2026-05-31T23:59:59.999Z'))).toThrow(expect.objectContaining({ code: 'NO_RATE_CARD' }));
  });

  it('rejects an invalid date', () => {
    expect(() => rateCardAt(card, new Date('nope'))).toThrow(expect.objectContaining({ code: 'INVALID_USAGE', details: { field: 'at' } }));
  });
});
