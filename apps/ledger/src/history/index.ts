export * from './history.module';
export * from './history.errors';
export * from './history.params';
export * from './balance.read';
export * from './balance.notifications';
export * from './usage.query';
export * from './transactions.query';
export * from './usage-export.service';
