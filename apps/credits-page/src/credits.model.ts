import { parseCredits, type Micro } from '@tally/money';

/**
 * The balance as the page reads it: every amount in micro-credits (bigint), parsed once from the API's decimal
 * strings. Nothing on the page does arithmetic on a float; Number appears only for ratios drawn on screen.
 */
export interface Balance {
  accountId: string;
  available: Micro;
  allowance: Micro;
  promotional: Micro;
  purchased: Micro;
  held: Micro;
  overdraft: Micro;
  allocation: Micro;
  usedThisCycle: Micro;
  unlimited: boolean;
  planId: string | null;
  cycleEnd: string | null;
  /** The account stream version the figures include: a later one replaces an earlier one, never the reverse. */
  version: number;
}

type Json = Record<string, unknown>;

const text = (value: unknown, field: string): string => {
  if (typeof value !== 'string') throw new Error(`the balance has no ${field}`);
  return value;
};
const amount = (value: unknown, field: string): Micro => parseCredits(text(value, field));
const optionalText = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * Reads both shapes the ledger sends: `GET /balance` (BalanceResponseDto, the kinds under `byKind`, `asOfVersion`)
 * and an event of `GET /balance/stream` (the projected row: kinds at the top level, `streamVersion`).
 */
export function balanceFrom(json: unknown): Balance {
  if (typeof json !== 'object' || json === null) throw new Error('the balance is not an object');
  const b = json as Json;
  const kinds = (typeof b.byKind === 'object' && b.byKind !== null ? b.byKind : b) as Json;
  const version = typeof b.asOfVersion === 'number' ? b.asOfVersion : typeof b.streamVersion === 'number' ? b.streamVersion : 0;
  return {
    accountId: text(b.accountId, 'accountId'),
    available: amount(b.available, 'available'),
    allowance: amount(kinds.allowance, 'allowance'),
    promotional: amount(kinds.promotional, 'promotional'),
    purchased: amount(kinds.purchased, 'purchased'),
    held: amount(b.held, 'held'),
    overdraft: amount(b.overdraft, 'overdraft'),
    allocation: amount(b.allocation, 'allocation'),
    usedThisCycle: amount(b.usedThisCycle, 'usedThisCycle'),
    unlimited: b.unlimited === true,
    planId: optionalText(b.planId),
    cycleEnd: optionalText(b.cycleEnd),
    version,
  };
}

/** What the page warns about: the ledger's own thresholds (20% and 5% of the cycle's allocation), then zero. */
export type CreditAlert = 'none' | 'low-20' | 'low-5' | 'insufficient';

export const LOW_CREDIT_PERCENTS = [20, 5] as const;

/** Strictly below `percent` % of the allocation, as the ledger decides it (account.state.ts isBelowThreshold). */
export function isBelowPercent(available: Micro, percent: number, allocation: Micro): boolean {
  return available * 100n < BigInt(percent) * allocation;
}

/**
 * "Insufficient Credits" at zero available (what an authorization would refuse: the ledger refuses what available
 * cannot cover, whatever debt is carried; in overdraft available is 0, but for the moment between a cycle's end and
 * its renewal, when usage is carried while purchased credits stay); otherwise the lowest threshold the credits left
 * are below, counting what open holds reserve as the ledger does (account.state.ts thresholdLevel: a hold reserves,
 * it does not spend). Unlimited plans never warn; without an allocation (no plan, only packs) there is no percentage.
 */
export function creditAlert(balance: Balance): CreditAlert {
  if (balance.unlimited) return 'none';
  if (balance.available <= 0n) return 'insufficient';
  if (balance.allocation <= 0n) return 'none';
  const left = balance.available + balance.held;
  if (isBelowPercent(left, 5, balance.allocation)) return 'low-5';
  if (isBelowPercent(left, 20, balance.allocation)) return 'low-20';
  return 'none';
}

/**
 * The low-credit banner's sentence. The level counts what open holds reserve (creditAlert), so the sentence does too:
 * "3 left: below 20%" beside 4 reserved read as a contradiction (3 is below 5%).
 */
export function lowCreditSentence(balance: Balance, percent: number, unit: string, format: (micros: Micro) => string): string {
  const left = balance.held > 0n ? `${format(balance.available)} ${unit} left and ${format(balance.held)} reserved for answers in progress` : `${format(balance.available)} ${unit} left`;
  return `${left}: below ${percent}% of your ${format(balance.allocation)} ${unit} this cycle.`;
}

/** `part` of `whole` in tenths of a percent, rounded down, clamped to 0..1000 (0 when `whole` is not positive). */
export function permille(part: Micro, whole: Micro): number {
  if (whole <= 0n || part <= 0n) return 0;
  const value = (part * 1000n) / whole;
  return Number(value > 1000n ? 1000n : value);
}

/** 125 → "12.5%", 1000 → "100%". */
export function formatPermille(value: number, locale?: string): string {
  return new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 }).format(value / 1000);
}

/**
 * Usage rows by credits, most first. Rows of equal credits keep the order they came in: the ledger lists them by
 * name in code-point order (README, "Corrections").
 */
export function mostCreditsFirst<T extends { credits: string }>(rows: readonly T[]): T[] {
  return [...rows].sort((a, b) => {
    const [x, y] = [parseCredits(a.credits), parseCredits(b.credits)];
    return x === y ? 0 : y > x ? 1 : -1;
  });
}

export interface AllowanceUse {
  /** What the allowance gave this cycle: the allocation less what is left of it (never below 0). */
  used: Micro;
  allocation: Micro;
  /** Tenths of a percent of the allocation used, 0..1000 (the bar's width). */
  permille: number;
  /** Allowance credits still there this cycle. */
  left: Micro;
}

/**
 * The allowance's share of the cycle: used and left add up to the allocation. Not `usedThisCycle`, which counts every
 * debit of the cycle from any bucket (the ledger spends what expires soonest first: a promotion ending before the
 * cycle goes before the allowance) and the debt carried into it.
 */
export function allowanceUse(balance: Balance): AllowanceUse {
  const used = balance.allocation > balance.allowance ? balance.allocation - balance.allowance : 0n;
  return { used, allocation: balance.allocation, permille: permille(used, balance.allocation), left: balance.allowance };
}

export interface FormatOptions {
  locale?: string;
  /**
   * Decimals shown at most (0-6). An amount that is not zero never reads as 0: one smaller than the last decimal shown
   * keeps the decimals it needs. What is cut goes by `rounding`.
   */
  maxDecimals?: number;
  /**
   * `down` (the default): a balance never reads as more than it is, and a debit (negative) never as less than was
   * taken: 12.9 reads 12, −1.7 reads −2. `up`, for what was spent: never less than it was. `away-from-zero`, for what is
   * owed: at `maxDecimals` whatever the amount, so 0.5 owed reads 1.
   */
  rounding?: 'down' | 'up' | 'away-from-zero';
  /** Always show a sign (+ for credits, − for debits), as the transaction history does. */
  signed?: boolean;
}

/**
 * Micro-credits for people: the whole part grouped by the locale (Intl formats the bigint exactly), then up to
 * `maxDecimals` decimals without trailing zeros. 6998712n → "6.998712", 1234500000n → "1,234.5".
 */
export function formatCredits(micros: Micro, { locale, maxDecimals = 6, rounding = 'down', signed = false }: FormatOptions = {}): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  let decimals = Math.max(0, Math.min(6, Math.trunc(maxDecimals)));
  if (rounding !== 'away-from-zero') while (roundTo(abs, decimals, false) === 0n && abs > 0n && decimals < 6) decimals += 1;
  // The absolute value goes up for what is owed, for `up` and, going down, for a negative amount.
  const shown = roundTo(abs, decimals, rounding === 'away-from-zero' || (rounding === 'up') !== negative);
  const whole = shown / 1_000_000n;
  const fraction = (shown % 1_000_000n).toString().padStart(6, '0').slice(0, decimals).replace(/0+$/, '');
  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const separator = new Intl.NumberFormat(locale).formatToParts(1.5).find((part) => part.type === 'decimal')?.value ?? '.';
  const digits = `${number.format(whole)}${fraction ? `${separator}${inLocaleDigits(fraction, locale)}` : ''}`;
  const sign = abs === 0n ? '' : negative ? '−' : signed ? '+' : '';
  return `${sign}${digits}`;
}

/** ASCII digits in the locale's own (Arabic-Indic, Devanagari…), as Intl writes a number's whole part. */
function inLocaleDigits(ascii: string, locale: string | undefined): string {
  const digit = new Intl.NumberFormat(locale, { useGrouping: false });
  return ascii.replace(/\d/g, (d) => digit.format(Number(d)));
}

/** `micros` (not negative) kept to `decimals` decimals, the rest cut towards zero or, away from zero, rounded up. */
function roundTo(micros: Micro, decimals: number, awayFromZero: boolean): Micro {
  const step = 10n ** BigInt(6 - decimals);
  const cut = (micros / step) * step;
  return awayFromZero && cut < micros ? cut + step : cut;
}

/** Sum of decimal credit strings, exactly. */
export function sumCredits(values: readonly string[]): Micro {
  return values.reduce((sum, value) => sum + parseCredits(value), 0n);
}

/** Ratio of `value` to `max` in 0..1 for drawing (a bar's height); exact in bigint, then one division for the screen. */
export function ratio(value: Micro, max: Micro): number {
  if (max <= 0n || value <= 0n) return 0;
  return Number((value * 10_000n) / max) / 10_000;
}
