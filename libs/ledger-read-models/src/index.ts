export * from './ledger-event-rows.codec';
export * from './ledger.projection';
export * from './migrations';
export * from './read-model-rebuild.projection';
export * from './read-model-verify.projection';
