export * from './instant.model';
