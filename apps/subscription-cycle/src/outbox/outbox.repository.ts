import type { EntityManager } from 'typeorm';
import { OutboxMessageEntity } from '../database/outbox-message.entity';
import type { SubscriptionEnvelope } from './subscription-event.codec';

/**
 * Queues envelopes in the caller's transaction, so they exist if and only if the state change that produced
 * them committed. A message id already queued is skipped (a retried transaction never queues it twice).
 */
export async function enqueueEnvelopes(manager: EntityManager, topic: string, envelopes: SubscriptionEnvelope[]): Promise<void> {
  if (envelopes.length === 0) return;
  await manager
    .createQueryBuilder()
    .insert()
    .into(OutboxMessageEntity)
    .values(envelopes.map((envelope) => ({ messageId: envelope.id, topic, accountId: envelope.accountId, type: envelope.type, envelope: { ...envelope } })))
    .orIgnore()
    .execute();
}
