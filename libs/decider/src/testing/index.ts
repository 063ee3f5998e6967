// Given/when/then for any Decider; test code only, never imported by production code.
export * from './decider.harness';
