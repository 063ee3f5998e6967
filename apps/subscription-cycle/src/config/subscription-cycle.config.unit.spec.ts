import { ConfigError, loadConfig } from '@tally/shared';
import { SubscriptionCycleConfig } from './subscription-cycle.config';

describe('SubscriptionCycleConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig(SubscriptionCycleConfig, {});
    expect(config).toMatchObject({
      PORT: 3003,
      DATABASE_SCHEMA: 'subscription',
      PLANS_PATH: 'config/plans.yaml',
      SUBSCRIPTION_EVENTS_TOPIC: 'subscription.events.v1',
      SCHEDULER_BATCH: 50,
    });
  });

  it('converts numbers from the environment and refuses bad ones', () => {
    expect(loadConfig(SubscriptionCycleConfig, { SCHEDULER_INTERVAL_MS: '250', PORT: '4000' })).toMatchObject({ SCHEDULER_INTERVAL_MS: 250, PORT: 4000 });
    expect(() => loadConfig(SubscriptionCycleConfig, { SCHEDULER_BATCH: '0' })).toThrow(ConfigError);
    expect(() => loadConfig(SubscriptionCycleConfig, { OUTBOX_INTERVAL_MS: 'soon' })).toThrow(ConfigError);
  });
});
