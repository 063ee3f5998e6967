import { MAX_AMOUNT_MICROS, formatCredits, parseCredits, type Micro } from '@tally/money';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_ALERT_THRESHOLDS, type Catalogue, type CreditPack, type Plan } from './catalogue.model';
import { SubscriptionError } from './subscription.errors';

// The failsafe schema keeps every scalar as the text written ("9.99", "true", "20"), so amounts never pass
// through a JavaScript number; this file turns each into its type and says where it went wrong.
const CREDITS = /^\d{1,30}(?:\.\d{1,6})?$/;
const USD = /^(\d{1,12})(?:\.(\d{1,2}))?$/;
const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const INTEGER = /^(?:0|[1-9]\d{0,8})$/;

const PLAN_KEYS = ['id', 'name', 'price', 'interval', 'creditsPerMonth', 'unlimited', 'alertThresholds', 'overdraftPolicy', 'rank', 'retired'];
const PACK_KEYS = ['id', 'credits', 'price'];

type Mapping = Record<string, unknown>;

function invalid(path: string, problem: string): SubscriptionError {
  return new SubscriptionError('INVALID_CATALOGUE', `plan catalogue: ${path || '(root)'} ${problem}`, { field: path || '(root)' });
}

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

function mapping(node: unknown, path: string, allowed: readonly string[]): Mapping {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) throw invalid(path, 'must be a mapping');
  const unknown = Object.keys(node).find((key) => !allowed.includes(key));
  if (unknown !== undefined) throw invalid(join(path, unknown), `is not a known key (expected one of ${allowed.join(', ')})`);
  return node as Mapping;
}

function sequence(node: unknown, path: string): unknown[] {
  if (!Array.isArray(node)) throw invalid(path, 'must be a list');
  return node;
}

const absent = (value: unknown): boolean => value === undefined || value === null || value === '';

function scalar(map: Mapping, key: string, path: string): string {
  const value = map[key];
  if (absent(value)) throw invalid(join(path, key), 'is missing');
  if (typeof value !== 'string') throw invalid(join(path, key), 'must be a scalar');
  return value;
}

function oneOf<T extends string>(map: Mapping, key: string, path: string, values: readonly T[]): T {
  const value = scalar(map, key, path);
  if (!(values as readonly string[]).includes(value)) throw invalid(join(path, key), `must be one of ${values.join(', ')}, got "${value}"`);
  return value as T;
}

function id(map: Mapping, path: string): string {
  const value = scalar(map, 'id', path);
  if (!ID.test(value)) throw invalid(join(path, 'id'), `must be lower-case letters, digits and dashes, got "${value}"`);
  return value;
}

function credits(map: Mapping, key: string, path: string): Micro {
  const value = scalar(map, key, path);
  if (!CREDITS.test(value)) throw invalid(join(path, key), `must be a non-negative decimal of credits with at most 6 decimals, got "${value}"`);
  const micros = parseCredits(value);
  // An allowance or a pack is one grant: the same bound as any amount the ledger takes in.
  if (micros > MAX_AMOUNT_MICROS) throw invalid(join(path, key), `must be at most ${formatCredits(MAX_AMOUNT_MICROS)} credits, got "${value}"`);
  return micros;
}

function usd(map: Mapping, path: string): { price: string; priceCents: bigint } {
  const price = scalar(map, 'price', path);
  const match = USD.exec(price);
  if (!match) throw invalid(join(path, 'price'), `must be a non-negative USD amount with at most 2 decimals, got "${price}"`);
  return { price, priceCents: BigInt(match[1]) * 100n + BigInt((match[2] ?? '').padEnd(2, '0')) };
}

function integer(value: unknown, path: string): number {
  if (typeof value !== 'string' || !INTEGER.test(value)) throw invalid(path, `must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** subscription.events.v1 carries at most 10 (CycleStarted, PlanChanged): a plan with more could not be published. */
export const MAX_ALERT_THRESHOLDS = 10;

function thresholds(node: unknown, path: string): readonly number[] {
  if (absent(node)) return DEFAULT_ALERT_THRESHOLDS;
  const listed = sequence(node, path);
  if (listed.length > MAX_ALERT_THRESHOLDS) throw invalid(path, `must list at most ${MAX_ALERT_THRESHOLDS} thresholds, got ${listed.length}`);
  const values = listed.map((value, index) => {
    const percent = integer(value, `${path}[${index}]`);
    if (percent < 1 || percent > 99) throw invalid(`${path}[${index}]`, `must be a percentage between 1 and 99, got ${percent}`);
    return percent;
  });
  values.forEach((percent, index) => {
    if (index > 0 && percent >= values[index - 1]) throw invalid(`${path}[${index}]`, 'must be lower than the threshold before it (highest first)');
  });
  return values;
}

/** An optional true/false (false when left out). */
function flag(map: Mapping, key: string, path: string): boolean {
  const text = absent(map[key]) ? 'false' : scalar(map, key, path);
  if (text !== 'true' && text !== 'false') throw invalid(join(path, key), `must be true or false, got "${text}"`);
  return text === 'true';
}

function plan(node: unknown, path: string): Plan {
  const map = mapping(node, path, PLAN_KEYS);
  const unlimited = flag(map, 'unlimited', path);
  if (unlimited && !absent(map['creditsPerMonth'])) throw invalid(join(path, 'creditsPerMonth'), 'must be left out of an unlimited plan');
  return {
    id: id(map, path),
    name: scalar(map, 'name', path),
    ...usd(map, path),
    interval: oneOf(map, 'interval', path, ['monthly', 'yearly'] as const),
    creditsPerMonth: unlimited ? 0n : credits(map, 'creditsPerMonth', path),
    unlimited,
    alertThresholds: thresholds(map['alertThresholds'], join(path, 'alertThresholds')),
    overdraftPolicy: oneOf(map, 'overdraftPolicy', path, ['carry', 'write-off'] as const),
    rank: integer(map['rank'] ?? '', join(path, 'rank')),
    retired: flag(map, 'retired', path),
  };
}

function pack(node: unknown, path: string): CreditPack {
  const map = mapping(node, path, PACK_KEYS);
  const pack = { id: id(map, path), credits: credits(map, 'credits', path), ...usd(map, path) };
  if (pack.credits === 0n) throw invalid(join(path, 'credits'), 'must be more than zero');
  return pack;
}

function byId<T extends { id: string }>(items: T[], path: string, taken: Set<string>): Map<string, T> {
  return new Map(
    items.map((item, index) => {
      if (taken.has(item.id)) throw invalid(`${path}[${index}].id`, `duplicates id "${item.id}"`);
      taken.add(item.id);
      return [item.id, item];
    }),
  );
}

/**
 * Parses and validates the plan catalogue YAML (text read by the app).
 * Throws `SubscriptionError('INVALID_CATALOGUE')` naming the offending path.
 */
export function parseCatalogue(yamlText: string): Catalogue {
  let document: unknown;
  try {
    document = parseYaml(yamlText, { schema: 'failsafe', uniqueKeys: true });
  } catch (error) {
    throw invalid('', `is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const root = mapping(document ?? null, '', ['version', 'fallbackPlanId', 'plans', 'packs']);
  const version = scalar(root, 'version', '');
  const planList = sequence(root['plans'], 'plans').map((node, index) => plan(node, `plans[${index}]`));
  if (planList.length === 0) throw invalid('plans', 'must list at least one plan');
  const packList = absent(root['packs']) ? [] : sequence(root['packs'], 'packs').map((node, index) => pack(node, `packs[${index}]`));

  const ids = new Set<string>();
  const plans = byId(planList, 'plans', ids);
  const packs = byId(packList, 'packs', ids);

  const fallbackPlanId = scalar(root, 'fallbackPlanId', '');
  const fallback = plans.get(fallbackPlanId);
  if (!fallback) throw invalid('fallbackPlanId', `names no plan of the catalogue: "${fallbackPlanId}"`);
  if (fallback.priceCents !== 0n) throw invalid('fallbackPlanId', `must name a free plan, "${fallbackPlanId}" costs ${fallback.price}`);
  if (fallback.retired) throw invalid('fallbackPlanId', `must name a plan that is not retired, "${fallbackPlanId}" is`);
  return { version, fallbackPlanId, plans, packs };
}
