export type { components, operations, paths } from './tally-api.generated';
export * from './tally.client';
export * from './tally.errors';
export { DEFAULT_RETRY, retryDelayMs, type RetryOptions } from './retry.schedule';
