import { logLevel } from 'kafkajs';
import pino from 'pino';
import { kafkaLogCreator, type KafkaLogger } from './kafka.logger';

function capture() {
  const lines: Array<[keyof KafkaLogger, object, string | undefined]> = [];
  const logger: KafkaLogger = {
    debug: (obj, msg) => void lines.push(['debug', obj, msg]),
    info: (obj, msg) => void lines.push(['info', obj, msg]),
    warn: (obj, msg) => void lines.push(['warn', obj, msg]),
    error: (obj, msg) => void lines.push(['error', obj, msg]),
  };
  return { logger, lines };
}

const entry = (level: logLevel, message: string, extra: object = {}) => ({
  namespace: 'Consumer',
  level,
  label: 'X',
  log: { timestamp: 'now', logger: 'kafkajs', message, ...extra },
});

describe('kafkaLogCreator', () => {
  it('routes kafkajs levels to the structured logger, fields as an object', () => {
    const { logger, lines } = capture();
    const log = kafkaLogCreator(logger)(logLevel.INFO);
    log(entry(logLevel.INFO, 'Starting', { groupId: 'g' }));
    log(entry(logLevel.ERROR, 'Crash', { error: 'boom' }));
    log(entry(logLevel.DEBUG, 'fetch'));
    expect(lines).toEqual([
      ['info', { kafkajs: 'Consumer', groupId: 'g' }, 'Starting'],
      ['error', { kafkajs: 'Consumer', error: 'boom' }, 'Crash'],
      ['debug', { kafkajs: 'Consumer' }, 'fetch'],
    ]);
  });

  it('downgrades errors kafkajs retries by itself (Kafka 4 coordinator loading) to warnings', () => {
    const { logger, lines } = capture();
    kafkaLogCreator(logger)(logLevel.INFO)(entry(logLevel.ERROR, 'Response GroupCoordinator', { error: 'The coordinator is loading and hence can\'t process requests' }));
    expect(lines[0][0]).toBe('warn');
  });

  it('accepts a pino logger as is', () => {
    const logger: KafkaLogger = pino({ enabled: false });
    expect(() => kafkaLogCreator(logger)(logLevel.INFO)(entry(logLevel.WARN, 'w'))).not.toThrow();
  });
});
