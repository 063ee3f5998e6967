import { Topics } from '@tally/contracts';
import type { RecordUsage } from '@tally/ledger-domain';
import { PricingError, priceUsage, type RateCard } from '@tally/pricing';
import { Rejection, type ToCommand } from '../accounts/account.commands';

/**
 * A usage message becomes RecordUsage, priced by the rate card in effect when the usage happened (one rounding
 * up per event; the card version is stamped on the debit). Unpriceable usage is dead-lettered with the reason.
 */
export function usageToCommand(rateCard: RateCard): ToCommand {
  return (message) => {
    // The consumer is wired to usage.events.v1; a message of another topic can never become usage.
    if (message.topic !== Topics.usageEvents) throw new Rejection('UNKNOWN_MESSAGE_TYPE', { topic: message.topic, type: message.type });
    const { envelope, data: usage } = message;
    let priced: ReturnType<typeof priceUsage>;
    try {
      priced = priceUsage(rateCard, usage, new Date(envelope.occurredAt));
    } catch (error) {
      if (error instanceof PricingError) throw new Rejection(error.code, { message: error.message, ...error.details });
      throw error;
    }
    const command: RecordUsage = {
      type: 'RecordUsage',
      accountId: envelope.accountId,
      usageId: envelope.id,
      amount: priced.amount,
      occurredAt: envelope.occurredAt,
      feature: usage.feature,
      models: [...new Set(priced.lines.map((line) => line.model))],
      pricing: { rateCardVersion: priced.rateCardVersion, lines: priced.lines.map((line) => ({ ...line })) },
      ...(usage.holdId ? { holdId: usage.holdId } : {}),
      ...(usage.metadata ? { metadata: usage.metadata } : {}),
    };
    return { command, commandKey: `usage:${envelope.id}` };
  };
}
