import pino, { type Logger } from 'pino';

/** Paths never written to logs, wherever they appear. */
export const REDACTED_PATHS = [
  'secret', '*.secret', 'webhookSecret', '*.webhookSecret', 'password', '*.password', 'apiKey', '*.apiKey',
  'authorization', '*.authorization', 'req.headers.authorization', 'req.headers.cookie', 'DATABASE_URL', 'API_KEYS',
  'SMTP_PASSWORD',
];

/** Injection token of a service's pino logger (`{ provide: LOGGER, useValue: createLogger(service, level) }`). */
export const LOGGER = Symbol('LOGGER');

/** Structured JSON logs: `logger.info({ accountId, usageId }, 'usage debited')`. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({
    level,
    base: { service },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

export type { Logger };
