export type { components, operations, paths } from './tally-api.generated';
