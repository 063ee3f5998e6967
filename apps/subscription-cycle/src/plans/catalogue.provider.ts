import { readFileSync } from 'node:fs';
import { parseCatalogue, type Catalogue } from '@tally/subscription-domain';

export const CATALOGUE = Symbol('CATALOGUE');

/** Reads and validates the plan catalogue at boot; a bad file stops the service with the offending path. */
export function loadCatalogue(path: string): Catalogue {
  return parseCatalogue(readFileSync(path, 'utf8'));
}
