import { Topics } from '@tally/contracts';
import { idempotencyKey, type RecordUsage } from '@tally/ledger-domain';
import { PricingError, priceUsage, type RateCard } from '@tally/pricing';
import { inNamespaces } from '@tally/shared';
import { Rejection, type ToCommand } from '../accounts/account.commands';

/**
 * A usage message becomes RecordUsage, priced by the rate card in effect when the usage happened (one rounding
 * up per event; the card version is stamped on the debit). Unpriceable usage is dead-lettered with the reason.
 * `namespaces`: the account-id prefixes of a product's own usage topic (USAGE_TOPIC_NAMESPACES); a message for any
 * other account is dead-lettered (ACCOUNT_OUTSIDE_NAMESPACE), never applied. Undefined: usage-ingest's topic, every
 * account.
 */
export function usageToCommand(rateCard: RateCard, namespaces?: { topic: string; prefixes: readonly string[] }): ToCommand {
  return (message) => {
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
    return { command, commandKey: idempotencyKey('usage', command.usageId) };
  };
}
