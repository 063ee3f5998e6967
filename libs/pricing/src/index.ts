export * from './pricing.error';
export * from './rate-card.model';
export { parseRateCard, rateCardAt } from './rate-card.parser';
export { priceUsage, canPrice } from './usage.pricer';
