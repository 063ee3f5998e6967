export type PricingErrorCode =
  | 'INVALID_RATE_CARD'
  | 'NO_RATE_CARD'
  | 'UNKNOWN_MODEL'
  | 'UNKNOWN_RESOLUTION'
  | 'UNPRICEABLE'
  | 'INVALID_USAGE'
  /** The priced amount of one usage event is above MAX_AMOUNT_MICROS (libs/money). */
  | 'AMOUNT_OUT_OF_RANGE';

export interface PricingErrorDetails {
  /** Where the problem is: a rate-card path (`versions[1].models.gpt-4o.chat.inputPerMillion`) or a usage field. */
  field?: string;
  model?: string;
  [key: string]: unknown;
}

/** Everything the pricing library refuses, with a code a transport filter can map (HTTP 422, dead-letter...). */
export class PricingError extends Error {
  constructor(
    readonly code: PricingErrorCode,
    message: string,
    readonly details: PricingErrorDetails = {},
  ) {
    super(message);
    this.name = 'PricingError';
  }
}
