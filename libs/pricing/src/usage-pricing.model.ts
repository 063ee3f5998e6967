import { MAX_AMOUNT_MICROS, divCeil, formatCredits, type Micro } from '@tally/money';
import { PricingError } from './pricing.errors';
import { rateCardAt } from './rate-card.parser';
import type { ModelPrices, PricedLine, PricedUsage, RateCard, RateCardVersion, TokenPrices, UsageToPrice } from './rate-card.model';

/**
 * Lines are first costed exactly in a unit one million times finer than a micro-credit
 * (µcr per million tokens × tokens), so nothing is rounded until the event total.
 */
const FINE_PER_MICRO = 1_000_000n;

interface CostedLine {
  line: Omit<PricedLine, 'amount'>;
  fine: bigint;
  /** The usage field that costs the most on this line: named when the event's price is out of range. */
  field: string;
}

function count(value: number | undefined, field: string): bigint {
  if (value === undefined || value === null) throw new PricingError('INVALID_USAGE', `${field} is required`, { field });
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new PricingError('INVALID_USAGE', `${field} must be a non-negative safe integer`, { field });
  }
  return BigInt(value);
}

function modelOf(version: RateCardVersion, model: string | undefined, field: string): ModelPrices {
  if (typeof model !== 'string' || model === '') throw new PricingError('INVALID_USAGE', `${field} is required`, { field });
  const prices = version.models.get(model);
  if (!prices) {
    // The message quotes nothing the caller sent (it is shown to HTTP callers); `model` is in the details for the
    // operator (a dead letter's details), which the HTTP transports do not pass on (see toLedgerError).
    throw new PricingError('UNKNOWN_MODEL', `${field} names a model that is not on rate card ${version.version}`, { field, model });
  }
  return prices;
}

function unpriceable(version: RateCardVersion, feature: string, model: string): PricingError {
  return new PricingError('UNPRICEABLE', `rate card ${version.version} has no ${feature} price for model "${model}"`, { field: 'feature', model });
}

function tokenLine(prices: TokenPrices, model: string, feature: string, inputTokens: number, outputTokens: number, fieldPrefix = ''): CostedLine {
  const input = prices.inputPerMillion * count(inputTokens, `${fieldPrefix}inputTokens`);
  const output = prices.outputPerMillion * count(outputTokens, `${fieldPrefix}outputTokens`);
  return { line: { model, feature, inputTokens, outputTokens }, fine: input + output, field: `${fieldPrefix}${input >= output ? 'inputTokens' : 'outputTokens'}` };
}

function costLines(version: RateCardVersion, usage: UsageToPrice): CostedLine[] {
  const feature = usage.feature;
  switch (feature) {
    case 'chat':
    case 'agent': {
      const prices = modelOf(version, usage.model, 'model')[feature];
      if (!prices) throw unpriceable(version, feature, usage.model as string);
      return [tokenLine(prices, usage.model as string, feature, usage.inputTokens as number, usage.outputTokens as number)];
    }
    case 'image': {
      const table = modelOf(version, usage.model, 'model').image;
      const model = usage.model as string;
      if (!table) throw unpriceable(version, feature, model);
      const images = count(usage.images, 'images');
      if (typeof usage.resolution !== 'string' || usage.resolution === '') {
        throw new PricingError('INVALID_USAGE', 'resolution is required', { field: 'resolution', model });
      }
      const perImage = table.get(usage.resolution);
      if (perImage === undefined) {
        throw new PricingError('UNKNOWN_RESOLUTION', `rate card ${version.version} has no price for ${model} at that resolution`, {
          field: 'resolution',
          model,
          resolution: usage.resolution,
        });
      }
      return [{ line: { model, feature, images: usage.images, resolution: usage.resolution }, fine: perImage * images * FINE_PER_MICRO, field: 'images' }];
    }
    case 'video': {
      const video = modelOf(version, usage.model, 'model').video;
      const model = usage.model as string;
      if (!video) throw unpriceable(version, feature, model);
      const seconds = count(usage.videoSeconds, 'videoSeconds');
      return [{ line: { model, feature, videoSeconds: usage.videoSeconds }, fine: video.perSecond * seconds * FINE_PER_MICRO, field: 'videoSeconds' }];
    }
    case 'council': {
      const responses = usage.responses;
      if (!Array.isArray(responses) || responses.length === 0) {
        throw new PricingError('INVALID_USAGE', 'a council answer needs at least one response', { field: 'responses' });
      }
      // One line per model: a model that answered twice is one line with both answers' tokens.
      const byModel = new Map<string, CostedLine>();
      responses.forEach((response, index) => {
        const field = `responses.${index}.`; // the request validator's path form
        const chat = modelOf(version, response.model, `${field}model`).chat;
        if (!chat) {
          throw new PricingError('UNPRICEABLE', `rate card ${version.version} has no chat price for model "${response.model}"`, {
            field: `${field}model`,
            model: response.model,
          });
        }
        const costed = tokenLine(chat, response.model, 'council', response.inputTokens, response.outputTokens, field);
        const previous = byModel.get(response.model);
        byModel.set(
          response.model,
          previous
            ? {
                line: {
                  ...previous.line,
                  inputTokens: (previous.line.inputTokens ?? 0) + response.inputTokens,
                  outputTokens: (previous.line.outputTokens ?? 0) + response.outputTokens,
                },
                fine: previous.fine + costed.fine,
                field: costed.fine > previous.fine ? costed.field : previous.field,
              }
            : costed,
        );
      });
      return [...byModel.values()];
    }
    default: {
      const never: never = feature;
      throw new PricingError('UNPRICEABLE', `feature ${JSON.stringify(never)} cannot be priced`, { field: 'feature' });
    }
  }
}

/**
 * Splits the rounded-up total into whole-µcr line shares that sum exactly to it: every line gets the floor
 * of its exact cost, and the few micro-credits left by rounding go to the lines with the largest remainders.
 */
function share(costed: CostedLine[], total: Micro): Micro[] {
  const shares = costed.map(({ fine }) => fine / FINE_PER_MICRO);
  let left = total - shares.reduce((sum, amount) => sum + amount, 0n);
  const byRemainder = costed
    .map(({ fine }, index) => ({ index, remainder: fine % FINE_PER_MICRO }))
    .filter(({ remainder }) => remainder > 0n)
    .sort((a, b) => (a.remainder === b.remainder ? a.index - b.index : a.remainder > b.remainder ? -1 : 1));
  for (const { index } of byRemainder) {
    if (left === 0n) break;
    shares[index] += 1n;
    left -= 1n;
  }
  return shares;
}

/** Prices one usage event with the rate card version in effect at `at`, rounding up once to a whole micro-credit. */
export function priceUsage(card: RateCard, usage: UsageToPrice, at: Date): PricedUsage {
  const version = rateCardAt(card, at);
  const costed = costLines(version, usage);
  const amount = divCeil(
    costed.reduce((sum, { fine }) => sum + fine, 0n),
    FINE_PER_MICRO,
  );
  if (amount > MAX_AMOUNT_MICROS) {
    const costliest = costed.reduce((a, b) => (b.fine > a.fine ? b : a));
    throw new PricingError(
      'AMOUNT_OUT_OF_RANGE',
      `this usage would cost ${formatCredits(amount)} credits, above the bound of ${formatCredits(MAX_AMOUNT_MICROS)} credits per usage event`,
      { field: costliest.field, amount: formatCredits(amount), max: formatCredits(MAX_AMOUNT_MICROS) },
    );
  }
  const shares = share(costed, amount);
  return {
    amount,
    rateCardVersion: version.version,
    lines: costed.map(({ line }, index) => ({ ...line, amount: shares[index] })),
  };
}

/** The reason `usage` could not be priced at `at`, or null when it can: for validators at the edge. */
export function canPrice(card: RateCard, usage: UsageToPrice, at: Date): PricingError | null {
  try {
    priceUsage(card, usage, at);
    return null;
  } catch (error) {
    if (error instanceof PricingError) return error;
    throw error;
  }
}
