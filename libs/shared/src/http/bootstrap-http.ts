import { type DynamicModule, type INestApplication, ValidationPipe, type Type } from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { json } from 'express';
import { ContractViolation, flattenValidationErrors } from '@tally/contracts';
import type { CommonConfig } from '../config/common.config';
import { redactConfig } from '../config/load-config';
import { HttpErrorFilter, type HttpStatusByCode } from '../errors/http-error.filter';
import { createLogger } from '../logging/logger';
import { PinoNestLogger } from '../logging/pino-nest.logger';
import { ApiKeyGuard, AUTH_STATUS_BY_CODE } from './api-key.guard';
import { ApiKeyRegistry } from './api-keys';

export interface HttpAppOptions {
  service: string;
  title: string;
  config: CommonConfig;
  statusByCode: HttpStatusByCode;
  /** Largest JSON body accepted (express `limit`), e.g. '1mb'. */
  bodyLimit?: string;
  /** Bind address; defaults to all interfaces. */
  host?: string;
  listen?: boolean;
}

/**
 * Creates and starts a service's HTTP app the same way for all four services: structured logs, API keys with
 * scopes, DTO validation with field errors, one error filter, OpenAPI at /docs, graceful shutdown on SIGTERM.
 */
export async function bootstrapHttpApp(module: Type<unknown> | DynamicModule, options: HttpAppOptions): Promise<INestApplication> {
  const logger = createLogger(options.service, options.config.LOG_LEVEL);
  logger.info({ config: redactConfig(options.config) }, 'starting');
  const app = await NestFactory.create(module, { logger: new PinoNestLogger(logger), bodyParser: false });
  app.use(json({ limit: options.bodyLimit ?? '1mb' }));
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => new ContractViolation('INVALID_PAYLOAD', flattenValidationErrors(errors)),
    }),
  );
  app.useGlobalFilters(new HttpErrorFilter({ ...AUTH_STATUS_BY_CODE, ...options.statusByCode }));
  app.useGlobalGuards(new ApiKeyGuard(app.get(Reflector), ApiKeyRegistry.fromJson(options.config.API_KEYS)));
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder().setTitle(options.title).setVersion('1').addBearerAuth().build(),
  );
  SwaggerModule.setup('docs', app, document);
  app.enableShutdownHooks();
  if (options.listen !== false) {
    await app.listen(options.config.PORT, options.host ?? '0.0.0.0');
    logger.info({ port: options.config.PORT }, 'listening');
  }
  return app;
}
