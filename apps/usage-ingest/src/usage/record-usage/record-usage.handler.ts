import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ContractViolation, USAGE_RECORDED, type EnvelopeOf, type FieldIssue, type UsageRecordedV1 } from '@tally/contracts';
import { KafkaProducer } from '@tally/kafka';
import type { RateCard } from '@tally/pricing';
import { CLOCK, type Clock } from '@tally/shared';
import { UsageIngestConfig } from '../../config/usage-ingest.config';
import { UsageIngestError } from '../../usage-ingest.errors';
import { RATE_CARD } from '../../rate-card.provider';
import { validateUsageEvent } from './usage-event.validation';
import type { RecordUsageResult, UsageEventRequest } from './usage-event.request.dto';

/**
 * Accepts usage for the ledger: validates every event (a batch with any bad event is refused whole), refuses
 * what the rate card can never price, produces the rest to usage.events.v1 keyed by account, and answers only
 * after Kafka acknowledged. Duplicates are reported, not produced again; the ledger stays the authority on
 * idempotency (it applies a usage id once even if two racing requests both produce it).
 */
@Injectable()
export class RecordUsageHandler {
  constructor(
    private readonly config: UsageIngestConfig,
    @Inject(RATE_CARD) private readonly rateCard: RateCard,
    private readonly producer: KafkaProducer,
    private readonly db: DataSource,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async execute(body: unknown): Promise<RecordUsageResult> {
    const events = this.validate(body);
    const fingerprints = new Map(events.map((e) => [e.id, fingerprint(e)]));
    const known = await this.acceptedEarlier(events);
    const conflicts = events.filter((e) => known.has(key(e)) && known.get(key(e)) !== fingerprints.get(e.id));
    if (conflicts.length > 0) {
      throw new UsageIngestError('IDEMPOTENCY_CONFLICT', 'A usage id was already accepted with different content.', {
        ids: conflicts.map((e) => e.id),
      });
    }
    const fresh = events.filter((e) => !known.has(key(e)));
    if (fresh.length > 0) {
      try {
        await this.producer.sendEnvelopes(this.config.USAGE_EVENTS_TOPIC, fresh.map(toEnvelope));
      } catch (error) {
        throw new UsageIngestError('KAFKA_UNAVAILABLE', 'The usage could not be handed to Kafka; retry with the same ids.', {
          reason: (error as Error).message,
        });
      }
      await this.remember(fresh, fingerprints);
    }
    const duplicateIds = events.filter((e) => known.has(key(e))).map((e) => e.id);
    return { accepted: fresh.length, duplicates: duplicateIds.length, duplicateIds };
  }

  private validate(body: unknown): UsageEventRequest[] {
    const isBatch = typeof body === 'object' && body !== null && 'events' in body;
    const items: unknown[] = isBatch ? (body as { events: unknown }).events as unknown[] : [body];
    if (isBatch && (!Array.isArray(items) || items.length === 0)) {
      throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'events', reason: 'must be a non-empty array of usage events' }]);
    }
    if (items.length > this.config.MAX_BATCH) {
      throw new UsageIngestError('BATCH_TOO_LARGE', `A batch holds at most ${this.config.MAX_BATCH} events.`, { count: items.length });
    }
    const issues: FieldIssue[] = [];
    const valid: UsageEventRequest[] = [];
    const seen = new Map<string, string>();
    items.forEach((item, index) => {
      const prefix = isBatch ? `events.${index}` : '';
      const result = validateUsageEvent(item, prefix, {
        rateCard: this.rateCard,
        now: this.clock.now(),
        maxFutureSkewSeconds: this.config.MAX_FUTURE_SKEW_SECONDS,
      });
      if ('issues' in result) return void issues.push(...result.issues);
      const event = result.event;
      const previous = seen.get(key(event));
      if (previous === undefined) {
        seen.set(key(event), fingerprint(event));
        valid.push(event);
      } else if (previous !== fingerprint(event)) {
        issues.push({ field: `${prefix}.id`, reason: 'appears twice in the batch with different content' });
      }
    });
    if (issues.length > 0) throw new ContractViolation('INVALID_PAYLOAD', issues);
    return valid;
  }

  private async acceptedEarlier(events: UsageEventRequest[]): Promise<Map<string, string>> {
    const rows: { account_id: string; usage_id: string; fingerprint: string }[] = await this.db.query(
      `select account_id, usage_id, fingerprint from "${this.config.DATABASE_SCHEMA}".accepted_usage
        where (account_id, usage_id) in (select * from unnest($1::text[], $2::text[]))`,
      [events.map((e) => e.accountId), events.map((e) => e.id)],
    );
    return new Map(rows.map((r) => [`${r.account_id}\u0000${r.usage_id}`, r.fingerprint]));
  }

  private async remember(events: UsageEventRequest[], fingerprints: Map<string, string>): Promise<void> {
    await this.db.query(
      `insert into "${this.config.DATABASE_SCHEMA}".accepted_usage (account_id, usage_id, fingerprint)
       select * from unnest($1::text[], $2::text[], $3::text[]) on conflict do nothing`,
      [events.map((e) => e.accountId), events.map((e) => e.id), events.map((e) => fingerprints.get(e.id) ?? '')],
    );
  }
}

const key = (e: UsageEventRequest) => `${e.accountId}\u0000${e.id}`;

/** Content hash of an event, to tell a true duplicate from the same id reused for different usage. */
function fingerprint(event: UsageEventRequest): string {
  return createHash('sha256').update(JSON.stringify(toEnvelope(event))).digest('hex');
}

function toEnvelope(event: UsageEventRequest): EnvelopeOf<'UsageRecorded', UsageRecordedV1> {
  const { id, accountId, occurredAt, ...data } = event;
  return { id, type: USAGE_RECORDED.type, version: USAGE_RECORDED.version, accountId, occurredAt, data };
}
