import { applyDecorators, Catch, type ExceptionFilter, UseFilters } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import { type Observable, throwError } from 'rxjs';
import { KAFKA_BATCH_TRANSPORT, type KafkaBatchConsumerSettings, type KafkaBatchPattern } from './kafka-batch.transport';

/**
 * Hands the handler's error to the transport as it was thrown. Nest's default RPC filter would replace it with
 * `{ status: 'error' }`, and the BatchConsumer needs it whole: a ContractViolation dead-letters the message,
 * anything else rolls the batch back and retries it.
 */
@Catch()
export class KafkaBatchErrorPassthrough implements ExceptionFilter {
  catch(exception: unknown): Observable<never> {
    return throwError(() => exception);
  }
}

/**
 * A controller method consuming a topic in batches through KafkaBatchTransport: `@EventPattern(pattern)` bound to
 * that transport, with the consumer's settings as the pattern's extras. The method receives a `KafkaBatch<T>`
 * (topic, partition, parsed messages, the open `tx`, `deadLetter`, `afterCommit`) and resolves once applied in `tx`.
 *
 * @param pattern the contract's topic name (configuration may bind it to another name), or `{ topic, group }`
 */
export function KafkaBatchHandler<T>(pattern: string | KafkaBatchPattern, settings: KafkaBatchConsumerSettings<T> = {}): MethodDecorator {
  // Nest keys an object pattern as sorted JSON; a pattern without a group is keyed by its topic alone.
  const key = typeof pattern === 'string' ? pattern : pattern.group === undefined ? pattern.topic : { group: pattern.group, topic: pattern.topic };
  return applyDecorators(EventPattern(key, KAFKA_BATCH_TRANSPORT, settings), UseFilters(new KafkaBatchErrorPassthrough()));
}
