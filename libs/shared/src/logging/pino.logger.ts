import pino, { type Logger } from 'pino';
import { logContextFields } from '../telemetry/trace-context.codec';

/** Paths never written to logs, wherever they appear. */
export const REDACTED_PATHS = [
  'secret', '*.secret', 'webhookSecret', '*.webhookSecret', 'password', '*.password', 'apiKey', '*.apiKey',
  'authorization', '*.authorization', 'req.headers.authorization', 'req.headers.cookie', 'DATABASE_URL', 'API_KEYS',
  'SMTP_PASSWORD',
];

/** Injection token of a service's pino logger (`{ provide: LOGGER, useValue: createLogger(service, level) }`). */
export const LOGGER = Symbol('LOGGER');

/**
 * Structured JSON logs: `logger.info({ accountId, usageId }, 'usage debited')`. Every line written inside a request's
 * or a consumed message's context carries its `requestId`, `traceId` and `spanId` (README "Logs").
 */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({
    level,
    base: { service },
    mixin: logContextFields,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

export type { Logger };
