// The account event codec (stored event <-> domain event <-> ledger.events.v1 envelope) lives in libs/ledger-events,
// shared with the operator CLI (apps/cli); the write side's imports of this path read it from there.
export * from '@tally/ledger-events';
