import { ContractViolation, type FieldIssue, validateInto } from '@tally/contracts';
import { canPrice, type RateCard } from '@tally/pricing';
import { UsageEventRequest } from './usage-event.request.dto';

export interface UsageValidationContext {
  rateCard: RateCard;
  now: Date;
  maxFutureSkewSeconds: number;
}

/**
 * Checks one usage event: its shape (class-validator), a time not too far in the future, and that the rate
 * card in effect at `occurredAt` can price it (else the field and model are named). Pure: no I/O.
 */
export function validateUsageEvent(
  item: unknown,
  prefix: string,
  ctx: UsageValidationContext,
): { event: UsageEventRequest } | { issues: FieldIssue[] } {
  const at = (field: string) => (prefix ? `${prefix}.${field}` : field);
  let event: UsageEventRequest;
  try {
    event = validateInto(UsageEventRequest, item, 'INVALID_PAYLOAD', prefix);
  } catch (error) {
    if (error instanceof ContractViolation) return { issues: error.issues };
    throw error;
  }
  const occurredAt = new Date(event.occurredAt);
  if (occurredAt.getTime() > ctx.now.getTime() + ctx.maxFutureSkewSeconds * 1000) {
    return { issues: [{ field: at('occurredAt'), reason: `must not be more than ${ctx.maxFutureSkewSeconds} s in the future (MAX_FUTURE_SKEW_SECONDS)` }] };
  }
  const problem = canPrice(ctx.rateCard, event, occurredAt);
  if (problem) {
    // The pricing library names the instant it priced at `at`: here that is the event's occurredAt.
    const priced = typeof problem.details?.field === 'string' ? problem.details.field : 'model';
    const field = priced === 'at' ? 'occurredAt' : priced;
    return { issues: [{ field: at(field), reason: problem.message }] };
  }
  return { event };
}
