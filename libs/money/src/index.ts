export * from './money.model';
