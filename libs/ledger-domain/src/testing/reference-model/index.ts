export * from './account.model';
export * from './account-simulation.fixtures';
