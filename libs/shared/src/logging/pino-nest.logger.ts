import type { LoggerService } from '@nestjs/common';
import type { Logger } from 'pino';

/** Lets NestJS (and its `new Logger(ctx)` instances) write through our structured pino logger. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...rest: unknown[]) { this.write('info', message, rest); }
  error(message: unknown, ...rest: unknown[]) { this.write('error', message, rest); }
  warn(message: unknown, ...rest: unknown[]) { this.write('warn', message, rest); }
  debug(message: unknown, ...rest: unknown[]) { this.write('debug', message, rest); }
  verbose(message: unknown, ...rest: unknown[]) { this.write('trace', message, rest); }
  fatal(message: unknown, ...rest: unknown[]) { this.write('fatal', message, rest); }

  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace' | 'fatal', message: unknown, rest: unknown[]) {
    // Nest passes the context name last; an error's stack may precede it.
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const fields: Record<string, unknown> = { context };
    if (typeof message === 'object' && message !== null) {
      const msg = typeof rest[0] === 'string' ? (rest.shift() as string) : undefined;
      this.logger[level]({ ...fields, ...(message as object) }, msg);
    } else {
      if (typeof rest[0] === 'string' && level === 'error') fields.stack = rest.shift();
      this.logger[level](fields, String(message));
    }
  }
}
