export * from './topics';
export * from './contract-violation';
export * from './validation';
export * from './envelope';
export * from './message-registry';
export * from './messages/usage-recorded.v1';
export * from './messages/subscription-events.v1';
export * from './messages/ledger-events.v1';
