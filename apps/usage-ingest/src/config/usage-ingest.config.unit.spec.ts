import { loadConfig } from '@tally/shared';
import { UsageIngestConfig } from './usage-ingest.config';

describe('UsageIngestConfig MAX_FUTURE_SKEW_SECONDS', () => {
  it("given more than 300 s (the ledger's USAGE_MAX_FUTURE_SKEW_SECONDS is at least 600), then refused naming it", () => {
    // What this service answers 202 the ledger must not dead-letter as OCCURRED_IN_FUTURE (never charged): its own
    // limit is at least 600 s, which leaves 300 s for the hosts' clocks to differ.
    expect(() => loadConfig(UsageIngestConfig, { MAX_FUTURE_SKEW_SECONDS: '301' })).toThrow(/MAX_FUTURE_SKEW_SECONDS/);
    expect(() => loadConfig(UsageIngestConfig, { MAX_FUTURE_SKEW_SECONDS: '86400' })).toThrow(/MAX_FUTURE_SKEW_SECONDS/);
    expect(loadConfig(UsageIngestConfig, { MAX_FUTURE_SKEW_SECONDS: '300' }).MAX_FUTURE_SKEW_SECONDS).toBe(300);
    expect(loadConfig(UsageIngestConfig, {}).MAX_FUTURE_SKEW_SECONDS).toBe(300);
  });
});
