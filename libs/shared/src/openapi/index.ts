export * from './api-errors.decorator';
export * from './api-schemas.decorator';
export * from './error-body.dto';
export * from './openapi-document.view';
export * from './usage-recorded.dto';
