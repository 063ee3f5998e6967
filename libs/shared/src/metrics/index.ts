export * from './process.metrics';
export * from './error-class.model';
export * from './http.metrics';
export * from './metrics.http.controller';
export * from './metrics.module';
export * from './prometheus-text.parser';
