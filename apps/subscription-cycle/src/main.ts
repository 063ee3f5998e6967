import { bootstrapHttpApp, loadConfig } from '@tally/shared';
import { SubscriptionCycleConfig } from './config/subscription-cycle.config';
import { createSubscriptionCycleModule } from './subscription-cycle.module';
import { SUBSCRIPTION_CYCLE_STATUS_BY_CODE } from './subscription-cycle.errors';

async function main(): Promise<void> {
  const config = loadConfig(SubscriptionCycleConfig);
  await bootstrapHttpApp(createSubscriptionCycleModule({ config }), {
    service: 'subscription-cycle',
    title: 'Tally subscription-cycle',
    config,
    statusByCode: SUBSCRIPTION_CYCLE_STATUS_BY_CODE,
  });
}

main().catch((error: unknown) => {
  // Before the logger exists (bad config, unreachable database): say why on stderr and exit non-zero.
  console.error(error);
  process.exit(1);
});
