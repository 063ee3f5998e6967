import { createLogger, type Logger } from '@tally/shared';
import type { SubscriptionCycleConfig } from './config/subscription-cycle.config';

export const LOGGER = Symbol('LOGGER');

export const serviceLogger = (config: SubscriptionCycleConfig): Logger => createLogger('subscription-cycle', config.LOG_LEVEL);
