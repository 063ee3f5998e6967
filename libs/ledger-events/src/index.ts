export * from './account-event.codec';
export * from './account-event-data.codec';
export * from './account-as-of.view';
export * from './account-state.codec';
