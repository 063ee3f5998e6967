import { ApiParam, ApiProperty } from '@nestjs/swagger';
import { ID_PATTERN } from '@tally/contracts';
import { MAX_AMOUNT_MICROS, MICROS_PER_CREDIT, formatCredits, type Micro } from '@tally/money';

const DECIMALS = 6;

/** The longest credit string `parseCredits` accepts: a sign, 30 digits, a point and 6 decimals. */
export const CREDIT_STRING_MAX_LENGTH = 1 + 30 + 1 + DECIMALS;

/** Any decimal credit string, signed, as the API answers amounts (libs/money's wire format). */
export const CREDIT_STRING_PATTERN = `^-?\\d{1,30}(?:\\.\\d{1,${DECIMALS}})?$`;

/**
 * The ECMAScript pattern (OpenAPI / JSON Schema `pattern`) of a decimal credit string that libs/money parses and
 * that lies in [0, max], or (0, max] when `positive`: the bounds of libs/money (MAX_AMOUNT_MICROS,
 * MAX_BALANCE_MICROS) stated exactly. `max` must be a power of ten of whole credits, which a pattern can state.
 */
export function creditAmountPattern(max: Micro, options: { positive?: boolean } = {}): string {
  const whole = max / MICROS_PER_CREDIT;
  const digits = whole.toString().length - 1;
  if (max % MICROS_PER_CREDIT !== 0n || digits < 1 || whole !== 10n ** BigInt(digits)) {
    throw new RangeError(`creditAmountPattern takes a power of ten of whole credits, got ${formatCredits(max)}`);
  }
  // libs/money takes at most 30 whole digits, leading zeros included.
  const nonZero = options.positive ? '(?=.*[1-9])' : '';
  return `^(?!\\d{31})${nonZero}(?:0*\\d{1,${digits}}(?:\\.\\d{1,${DECIMALS}})?|0*1${'0'.repeat(digits)}(?:\\.0{1,${DECIMALS}})?)$`;
}

/** OpenAPI schema of an amount a request carries: a decimal string within libs/money's bound (never a JSON number). */
export function creditAmountSchema(options: { max?: Micro; positive?: boolean } = {}) {
  const max = options.max ?? MAX_AMOUNT_MICROS;
  return {
    type: 'string' as const,
    pattern: creditAmountPattern(max, options),
    maxLength: CREDIT_STRING_MAX_LENGTH,
    description: `Credits as a decimal string with at most ${DECIMALS} decimals, ${options.positive ? 'greater than 0' : 'at least 0'} and at most ${formatCredits(max)}`,
  };
}

/** A request amount property (see creditAmountSchema), e.g. `@ApiCreditAmount({ positive: true, example: '50' })`. */
export const ApiCreditAmount = (options: { max?: Micro; positive?: boolean; required?: boolean; example?: string; description?: string } = {}) => {
  const { required = true, example, description, ...bounds } = options;
  const schema = creditAmountSchema(bounds);
  return ApiProperty({ ...schema, required, example, description: description ? `${description}. ${schema.description}` : schema.description });
};

/** A response amount: any decimal credit string (signed for movements). */
export const ApiCredits = (options: { description?: string; nullable?: boolean; example?: string } = {}) =>
  ApiProperty({ type: 'string', pattern: CREDIT_STRING_PATTERN, ...options });

/** The id pattern of libs/contracts (account ids, usage ids, idempotency keys), as OpenAPI states it. */
export const API_ID_PATTERN = ID_PATTERN.source;

/** A path parameter that is an id (`:accountId`, `:holdId`): 1-128 characters of letters, digits and . _ : @ - */
export const ApiIdParam = (name: string, description?: string) =>
  ApiParam({ name, description, schema: { type: 'string', pattern: API_ID_PATTERN, minLength: 1, maxLength: 128 } });

/**
 * A grant's id as the ledger answers it: its kind's prefix and the idempotency key, payment reference or cycle id it
 * came from (up to 128 characters), so up to 138 characters in all; or any plain id.
 */
export const GRANT_ID_PATTERN = /^(?:(?:grant|purchase|allowance|refund):[A-Za-z0-9._:@-]{1,128}|[A-Za-z0-9._:@-]{1,128})$/;

/** `:grantId`: the id a grant or purchase answered (GRANT_ID_PATTERN). */
export const ApiGrantIdParam = (name: string, description?: string) =>
  ApiParam({ name, description, schema: { type: 'string', pattern: GRANT_ID_PATTERN.source, minLength: 1, maxLength: 138 } });
