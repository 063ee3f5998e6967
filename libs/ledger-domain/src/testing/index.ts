// Test helpers of the account domain: fixtures and seeded command histories. Not part of the production barrel.
export * from './account.fixtures';
export * from './account-histories.fixtures';
export * from './reference-model';
export * from './account-memory.fixtures';
