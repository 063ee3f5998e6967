export * from './pricing.errors';
export * from './rate-card.model';
export { parseRateCard, rateCardAt } from './rate-card.parser';
export { priceUsage, canPrice } from './usage-pricing.model';
