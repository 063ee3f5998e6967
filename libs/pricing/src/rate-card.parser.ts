import { MAX_AMOUNT_MICROS, formatCredits, parseCredits, type Micro } from '@tally/money';
import { INSTANT_RULE, parseInstant } from '@tally/instant';
import { parse as parseYaml } from 'yaml';
import { PricingError } from './pricing.errors';
import type { ModelPrices, RateCard, RateCardVersion, TokenPrices } from './rate-card.model';

// Prices are written as plain decimals ("2.5"); the failsafe schema keeps every scalar as the exact text
// written, so a price never passes through a JavaScript number on its way to bigint.
const DECIMAL_PRICE = /^\d{1,30}(?:\.\d{1,6})?$/;
const RESOLUTION = /^[1-9]\d{0,4}x[1-9]\d{0,4}$/;
const MODEL_ID = /^[a-z0-9][a-z0-9._:/-]{0,99}$/i;
const VERSION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

type Node = unknown;
type Mapping = Record<string, Node>;

function invalid(path: string, problem: string): PricingError {
  return new PricingError('INVALID_RATE_CARD', `rate card: ${path || '(root)'} ${problem}`, { field: path || '(root)' });
}

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

function mapping(node: Node, path: string, allowed?: readonly string[]): Mapping {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) throw invalid(path, 'must be a mapping');
  const map = node as Mapping;
  if (allowed) {
    const unknown = Object.keys(map).find((key) => !allowed.includes(key));
    if (unknown !== undefined) throw invalid(join(path, unknown), `is not a known key (expected one of ${allowed.join(', ')})`);
  }
  return map;
}

function sequence(node: Node, path: string): Node[] {
  if (!Array.isArray(node)) throw invalid(path, 'must be a list');
  return node;
}

function text(map: Mapping, key: string, path: string): string {
  const value = map[key];
  const at = join(path, key);
  if (value === undefined || value === null || value === '') throw invalid(at, 'is missing');
  if (typeof value !== 'string') throw invalid(at, 'must be a scalar');
  return value;
}

function price(value: Node, path: string): Micro {
  if (value === undefined || value === null || value === '') throw invalid(path, 'is missing');
  if (typeof value !== 'string' || !DECIMAL_PRICE.test(value)) {
    throw invalid(path, `must be a non-negative decimal with at most 6 decimals, got ${JSON.stringify(value)}`);
  }
  const micros = parseCredits(value);
  // One unit (a million tokens, an image, a second) never costs more than one amount may be.
  if (micros > MAX_AMOUNT_MICROS) throw invalid(path, `must be at most ${formatCredits(MAX_AMOUNT_MICROS)} credits, got "${value}"`);
  return micros;
}

function instant(map: Mapping, key: string, path: string): Date {
  const value = text(map, key, path);
  const parsed = parseInstant(value);
  if (!parsed) throw invalid(join(path, key), `${INSTANT_RULE}, got "${value}"`);
  return parsed;
}

function tokenPrices(node: Node, path: string): TokenPrices {
  const map = mapping(node, path, ['inputPerMillion', 'outputPerMillion']);
  return {
    inputPerMillion: price(map['inputPerMillion'], join(path, 'inputPerMillion')),
    outputPerMillion: price(map['outputPerMillion'], join(path, 'outputPerMillion')),
  };
}

function imagePrices(node: Node, path: string): ReadonlyMap<string, Micro> {
  const map = mapping(node, path);
  const entries = Object.entries(map);
  if (entries.length === 0) throw invalid(path, 'must price at least one resolution');
  return new Map(
    entries.map(([resolution, value]) => {
      if (!RESOLUTION.test(resolution)) throw invalid(join(path, resolution), 'is not a resolution like "1024x1024"');
      return [resolution, price(value, join(path, resolution))];
    }),
  );
}

function modelPrices(node: Node, path: string): ModelPrices {
  const map = mapping(node, path, ['chat', 'agent', 'image', 'video']);
  if (Object.keys(map).length === 0) throw invalid(path, 'must price at least one of chat, agent, image, video');
  const prices: { -readonly [K in keyof ModelPrices]: ModelPrices[K] } = {};
  if ('chat' in map) prices.chat = tokenPrices(map['chat'], join(path, 'chat'));
  if ('agent' in map) prices.agent = tokenPrices(map['agent'], join(path, 'agent'));
  if ('image' in map) prices.image = imagePrices(map['image'], join(path, 'image'));
  if ('video' in map) {
    const video = mapping(map['video'], join(path, 'video'), ['perSecond']);
    prices.video = { perSecond: price(video['perSecond'], join(path, 'video.perSecond')) };
  }
  return prices;
}

function rateCardVersion(node: Node, path: string): RateCardVersion {
  const map = mapping(node, path, ['version', 'effectiveFrom', 'models']);
  const version = text(map, 'version', path);
  // Stored on every usage it prices (ledger.events.v1 `rateCardVersion`, at most 64 characters, and the read models).
  if (!VERSION_ID.test(version)) throw invalid(join(path, 'version'), 'must be 1-64 letters, digits, ".", "_", ":" or "-"');
  const effectiveFrom = instant(map, 'effectiveFrom', path);
  const modelsPath = join(path, 'models');
  const models = Object.entries(mapping(map['models'] ?? null, modelsPath));
  if (models.length === 0) throw invalid(modelsPath, 'must list at least one model');
  return {
    version,
    effectiveFrom,
    models: new Map(
      models.map(([model, prices]) => {
        if (!MODEL_ID.test(model)) throw invalid(join(modelsPath, model), 'is not a valid model id');
        return [model, modelPrices(prices, join(modelsPath, model))];
      }),
    ),
  };
}

/**
 * Parses and validates the rate card YAML (text read by the app) into bigint micro-credit prices.
 * Throws `PricingError('INVALID_RATE_CARD')` naming the offending path.
 */
export function parseRateCard(yamlText: string): RateCard {
  let document: Node;
  try {
    document = parseYaml(yamlText, { schema: 'failsafe', uniqueKeys: true });
  } catch (error) {
    throw invalid('', `is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const root = mapping(document ?? null, '', ['versions']);
  const list = sequence(root['versions'], 'versions');
  if (list.length === 0) throw invalid('versions', 'must list at least one version');
  const versions = list.map((node, index) => rateCardVersion(node, `versions[${index}]`));

  const seen = new Set<string>();
  versions.forEach(({ version }, index) => {
    if (seen.has(version)) throw invalid(`versions[${index}].version`, `duplicates version "${version}"`);
    seen.add(version);
  });
  const sorted = [...versions].sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime());
  sorted.forEach((current, index) => {
    const previous = sorted[index - 1];
    if (previous && previous.effectiveFrom.getTime() === current.effectiveFrom.getTime()) {
      throw invalid(`versions[${versions.indexOf(current)}].effectiveFrom`, `is the same instant as version "${previous.version}"`);
    }
  });
  return { versions: sorted };
}

/** The version in effect at `at`: the latest whose `effectiveFrom` is not after `at`. */
export function rateCardAt(card: RateCard, at: Date): RateCardVersion {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
    throw new PricingError('INVALID_USAGE', 'pricing time is not a valid date', { field: 'at' });
  }
  for (let index = card.versions.length - 1; index >= 0; index--) {
    const version = card.versions[index];
    if (version.effectiveFrom.getTime() <= at.getTime()) return version;
  }
  throw new PricingError('NO_RATE_CARD', `no rate card version is in effect at ${at.toISOString()}`, { field: 'at', at: at.toISOString() });
}
