import { Topics } from '@tally/contracts';
import { earliestStamp } from '@tally/kafka';
import { idempotencyKey, type RecordUsage } from '@tally/ledger-domain';
import { PricingError, priceUsage, type RateCard } from '@tally/pricing';
import { inNamespaces } from '@tally/shared';
import { Rejection, type ConsumedAt, type ToCommand } from '../accounts/account.commands';

/** How a usage topic's messages are taken. */
export interface UsageTopicRules {
  /**
   * How far ahead of when it was produced and consumed (the earlier of the record's timestamp and the ledger's clock)
   * a usage may be dated (USAGE_MAX_FUTURE_SKEW_SECONDS); later, it is dead-lettered OCCURRED_IN_FUTURE.
   */
  maxFutureSkewSeconds: number;
  /**
   * The account-id prefixes of a product's own usage topic (USAGE_TOPIC_NAMESPACES); a message for any other account
   * is dead-lettered (ACCOUNT_OUTSIDE_NAMESPACE), never applied. Undefined: usage-ingest's topic, every account.
   */
  namespaces?: { topic: string; prefixes: readonly string[] };
}

/**
 * A usage message becomes RecordUsage, priced by the rate card in effect when the usage happened (one rounding
 * up per event; the card version is stamped on the debit). Unpriceable usage is dead-lettered with the reason, and so
 * is usage dated too far ahead (it would be priced by a rate card version not in effect yet).
 */
export function usageToCommand(rateCard: RateCard, { maxFutureSkewSeconds, namespaces }: UsageTopicRules): ToCommand {
  return (message, consumed) => {
    // The consumer is wired to usage.events.v1; a message of another topic can never become usage.
    if (message.topic !== Topics.usageEvents) throw new Rejection('UNKNOWN_MESSAGE_TYPE', { topic: message.topic, type: message.type });
    const { envelope, data: usage } = message;
    if (namespaces && !inNamespaces(namespaces.prefixes, envelope.accountId)) {
      throw new Rejection('ACCOUNT_OUTSIDE_NAMESPACE', {
        message: `Topic ${namespaces.topic} may carry usage only for accounts starting with ${namespaces.prefixes.join(' or ')}.`,
        topic: namespaces.topic,
        accountId: envelope.accountId,
        namespaces: namespaces.prefixes,
      });
    }
    // The contract took an instant in any offset and up to nine fraction digits; the event keeps the instant this
    // usage was priced at, as toISOString writes it, so the read models (PostgreSQL rounds a seventh digit, where
    // Date truncates past the third) date it exactly where it was priced.
    const occurredAt = new Date(envelope.occurredAt);
    const latest = latestAllowed(consumed, maxFutureSkewSeconds);
    if (occurredAt.getTime() > latest) {
      throw new Rejection('OCCURRED_IN_FUTURE', {
        message: `occurredAt must not be more than ${maxFutureSkewSeconds} s after the message was produced and consumed (USAGE_MAX_FUTURE_SKEW_SECONDS).`,
        field: 'occurredAt',
        occurredAt: envelope.occurredAt,
        latest: new Date(latest).toISOString(),
        maxFutureSkewSeconds,
      });
    }
    let priced: ReturnType<typeof priceUsage>;
    try {
      priced = priceUsage(rateCard, usage, occurredAt);
    } catch (error) {
      if (error instanceof PricingError) throw new Rejection(error.code, { message: error.message, ...error.details });
      throw error;
    }
    const command: RecordUsage = {
      type: 'RecordUsage',
      accountId: envelope.accountId,
      usageId: envelope.id,
      amount: priced.amount,
      occurredAt: occurredAt.toISOString(),
      feature: usage.feature,
      models: [...new Set(priced.lines.map((line) => line.model))],
      pricing: { rateCardVersion: priced.rateCardVersion, lines: priced.lines.map((line) => ({ ...line })) },
      ...(usage.holdId ? { holdId: usage.holdId } : {}),
      ...(usage.metadata ? { metadata: usage.metadata } : {}),
    };
    // The usage's idempotency key: a snapshotted account looks a forgotten key up by it (account-memory.model.ts).
    const commandKey = idempotencyKey('usage', command.usageId);
    // On a product's own topic the envelope's actor is whatever its producer claims (another product's name, say):
    // what is known is the topic, which only that product's principal may write (docs/kafka-acls.md).
    return namespaces ? { command, commandKey, actor: productTopicActor(namespaces.topic) } : { command, commandKey };
  };
}

/** The actor recorded for usage from a product's own topic: the topic, within the 64 characters an actor has. */
export function productTopicActor(topic: string): string {
  return `topic:${topic}`.slice(0, 64);
}

/**
 * The latest instant a usage consumed now may be dated: the skew after the earliest of the record's timestamp (when it
 * was produced: fixed, so a message that waited in Kafka is measured against then), a replayed dead letter's first
 * record's (a replay is stamped when it is sent again: a usage refused as dated ahead would pass once enough time
 * went by) and the ledger's clock (a producer whose clock runs ahead stamps both). Only ever earlier: a producer that
 * sets the replay's header itself can only have its own usage refused. Timestamps that are not usable are left out
 * (earliestStamp, the rule the replay uses to carry the header on).
 */
function latestAllowed({ timestamp, receivedAt, firstProducedAt }: ConsumedAt, maxFutureSkewSeconds: number): number {
  const produced = earliestStamp(timestamp, firstProducedAt);
  return Math.min(receivedAt.getTime(), produced === undefined ? Infinity : Number(produced)) + maxFutureSkewSeconds * 1000;
}
