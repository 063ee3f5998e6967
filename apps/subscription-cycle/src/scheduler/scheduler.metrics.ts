import { MetricSources, firstReading, scrapeTimeGauges } from '@tally/metrics';

/** Subscriptions the scheduler parked, unable to tick them (their renewals not granted meanwhile). */
export interface Parked {
  count: number;
  /** Since the oldest of them was first parked; 0 when none. */
  oldestSeconds: number;
}

export interface ParkedSource {
  parked(): Promise<Parked>;
}

export const parkedSources = new MetricSources<ParkedSource>();

scrapeTimeGauges(() => firstReading(parkedSources, (source) => source.parked()), [
  { name: 'tally_subscriptions_parked', help: 'Subscriptions the scheduler could not tick and parked (see parked_reason); their renewals wait.', value: (parked) => parked.count },
  { name: 'tally_subscriptions_parked_oldest_seconds', help: 'How long the oldest parked subscription has been parked (0 when none).', value: (parked) => parked.oldestSeconds },
]);
