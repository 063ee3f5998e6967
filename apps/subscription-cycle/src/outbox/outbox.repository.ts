import type { EntityManager } from 'typeorm';
import { carrierOf, type TraceCarrier } from '@tally/shared';
import { OutboxMessageEntity } from '../database/outbox-message.entity';
import type { SubscriptionEnvelope } from './subscription-event.codec';

/**
 * Queues envelopes in the caller's transaction, so they exist if and only if the state change that produced
 * them committed. A message id already queued is skipped (a retried transaction never queues it twice). `trace`:
 * the trace context and request id the relay publishes them with (by default the active context's: the HTTP
 * request's, none for the scheduler's own work).
 */
export async function enqueueEnvelopes(manager: EntityManager, topic: string, envelopes: SubscriptionEnvelope[], trace: TraceCarrier | undefined = carrierOf()): Promise<void> {
  if (envelopes.length === 0) return;
  await manager
    .createQueryBuilder()
    .insert()
    .into(OutboxMessageEntity)
    .values(envelopes.map((envelope) => ({ messageId: envelope.id, topic, accountId: envelope.accountId, type: envelope.type, envelope: { ...envelope }, trace: trace ?? null })))
    .orIgnore()
    .execute();
}
