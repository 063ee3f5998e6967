import { logLevel, type logCreator } from 'kafkajs';

/**
 * The slice of a pino logger this library needs (`pino()` satisfies it), so the apps' logging module can be
 * passed straight in and tests can capture lines without pino.
 */
export interface KafkaLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentKafkaLogger: KafkaLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Errors kafkajs logs at ERROR level although it retries them itself (Kafka 4.x reports a loading group
 * coordinator on first use); logging them as errors would page someone for nothing.
 */
const RETRIED_BY_KAFKAJS = /coordinator is loading|COORDINATOR_LOAD_IN_PROGRESS|not the correct coordinator|leadership election|There is no leader for this topic-partition/i;

/** Routes kafkajs' own logs into the structured logger, one object per line, namespace kept. */
export function kafkaLogCreator(logger: KafkaLogger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _name, ...fields } = log as typeof log & { timestamp?: string; logger?: string };
      const entry = { kafkajs: namespace, ...fields };
      switch (level) {
        case logLevel.ERROR:
          if (RETRIED_BY_KAFKAJS.test(`${message} ${String(fields.error ?? '')}`)) logger.warn(entry, message);
          else logger.error(entry, message);
          return;
        case logLevel.WARN:
          logger.warn(entry, message);
          return;
        case logLevel.INFO:
          logger.info(entry, message);
          return;
        default:
          logger.debug(entry, message);
      }
    };
}
