import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseRateCard, type RateCard } from '@tally/pricing';

export const RATE_CARD = Symbol('RATE_CARD');

/** Reads and validates the rate card once at boot; a bad file stops the service with the path of the problem. */
export function loadRateCard(path: string): RateCard {
  return parseRateCard(readFileSync(resolve(path), 'utf8'));
}
