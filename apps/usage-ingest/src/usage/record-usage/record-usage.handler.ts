import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ContractViolation, type EnvelopeOf, type FieldIssue, type UsageRecordedV1 } from '@tally/contracts';
import { KafkaProducer } from '@tally/kafka';
import type { RateCard } from '@tally/pricing';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { CLOCK, LOGGER, carrierHeaders, carrierOf, endSpan, outsideNamespaceError, outsideNamespaces, startChildSpan, type Clock, type Logger } from '@tally/shared';
import { UsageIngestConfig } from '../../config/usage-ingest.config';
import { UsageIngestError } from '../../usage-ingest.errors';
import { RATE_CARD } from '../../rate-card.provider';
import { matchesFingerprint, toUsageEnvelope, usageFingerprint } from './usage-event.codec';
import { validateUsageEvent } from './usage-event.parser';
import type { RecordUsageResult, UsageEventRequest } from './usage-event.request.dto';

/**
 * Accepts usage for the ledger: validates every event (a batch with any bad event is refused whole), refuses
 * what the rate card can never price, produces the rest to usage.events.v1 keyed by account, and answers only
 * after Kafka acknowledged. Each id is reserved (with its content's fingerprint) before it is produced, so of two
 * requests racing with one id and different content one is accepted and the other refused, and only the accepted
 * content reaches Kafka. Duplicates are reported, not produced again; an id reserved but not yet acknowledged (a
 * request in flight, or one whose produce failed) is produced again by a request with the same content: the ledger
 * stays the authority on idempotency and applies a usage id once.
 */
@Injectable()
export class RecordUsageHandler {
  constructor(
    private readonly config: UsageIngestConfig,
    @Inject(RATE_CARD) private readonly rateCard: RateCard,
    private readonly producer: KafkaProducer,
    private readonly db: DataSource,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * `actor`: the API key's name, carried on each envelope (the ledger's audit trail). `namespaces`: the account-id
   * prefixes the key is limited to (undefined: every account); one event outside them refuses the whole request,
   * naming every such event's index, before anything is produced.
   */
  async execute(body: unknown, actor?: string, namespaces?: readonly string[]): Promise<RecordUsageResult> {
    const { events, repeatedIds, accountIds, fingerprints } = this.validate(body);
    const outside = outsideNamespaces(namespaces, accountIds);
    if (outside.length > 0) {
      throw outsideNamespaceError({ indexes: outside, accountIds: [...new Set(outside.map((index) => accountIds[index]))] }, 'Usage events name an account');
    }
    const requestId = randomUUID();
    const { reserved, earlier } = await this.reserve(events, fingerprints, requestId);
    // Ours, and the same content reserved earlier but not acknowledged yet (its produce failed, or is still going).
    const toProduce = events.filter((e) => reserved.has(key(e)) || earlier.get(key(e))?.produced !== true);
    if (toProduce.length > 0) {
      try {
        await this.produce(toProduce.map((event) => toUsageEnvelope(event, actor)));
      } catch (error) {
        // The reservations stay, not produced: the events may have reached Kafka, so the ids keep this content (a retry produces them).
        // The driver's message names brokers (host and port) and socket errors: it goes to the log, not to the client.
        this.logger.warn({ err: error, requestId, events: toProduce.length }, 'usage not handed to Kafka; answered 503 KAFKA_UNAVAILABLE');
        throw new UsageIngestError('KAFKA_UNAVAILABLE', 'The usage could not be handed to Kafka; retry with the same ids and the same content.', { dependency: 'kafka' });
      }
    }
    await this.produced(requestId);
    // Every event sent is either accepted or a duplicate: of an earlier request, or of an event earlier in this batch.
    const producing = new Set(toProduce);
    const duplicateIds = [...events.filter((e) => !producing.has(e)).map((e) => e.id), ...repeatedIds];
    return { accepted: toProduce.length, duplicates: duplicateIds.length, duplicateIds };
  }

  /**
   * To Kafka with the request's trace context and request id in every message's headers (one `publish` span when
   * tracing is on), so the ledger's work on them continues the request's trace and log context.
   */
  private async produce(envelopes: EnvelopeOf<'UsageRecorded', UsageRecordedV1>[]): Promise<void> {
    const topic = this.config.USAGE_EVENTS_TOPIC;
    const span = startChildSpan(`${topic} publish`, SpanKind.PRODUCER, context.active(), {
      'messaging.system': 'kafka', 'messaging.destination.name': topic, 'messaging.batch.message_count': envelopes.length,
    });
    const headers = carrierHeaders(carrierOf(span ? trace.setSpan(context.active(), span) : context.active()));
    try {
      await this.producer.sendEnvelopes(topic, envelopes, headers);
      endSpan(span);
    } catch (error) {
      endSpan(span, error);
      throw error;
    }
  }

  /**
   * The batch's distinct events, and the ids repeated in it with the same meaning (a repeat with another meaning
   * is refused, naming its `id` field); `fingerprints`: each distinct event's, by `key`, which `remember` stores.
   */
  private validate(body: unknown): { events: UsageEventRequest[]; repeatedIds: string[]; accountIds: string[]; fingerprints: Map<string, string> } {
    const isBatch = typeof body === 'object' && body !== null && 'events' in body;
    const items: unknown[] = isBatch ? (body as { events: unknown }).events as unknown[] : [body];
    if (isBatch) {
      const extra = Object.keys(body as object).filter((k) => k !== 'events');
      if (extra.length > 0) {
        throw new ContractViolation('INVALID_PAYLOAD', extra.map((field) => ({ field, reason: 'is not a property of a batch (only events)' })));
      }
      if (!Array.isArray(items) || items.length === 0) {
        throw new ContractViolation('INVALID_PAYLOAD', [{ field: 'events', reason: 'must be a non-empty array of usage events' }]);
      }
    }
    if (items.length > this.config.MAX_BATCH) {
      throw new UsageIngestError('BATCH_TOO_LARGE', `A batch holds at most ${this.config.MAX_BATCH} events.`, { count: items.length, limit: this.config.MAX_BATCH });
    }
    const issues: FieldIssue[] = [];
    const events: UsageEventRequest[] = [];
    const repeatedIds: string[] = [];
    const seen = new Map<string, string>();
    // Every event's account, by its index in the request (repeats included), for the key's namespaces.
    const accountIds: string[] = [];
    items.forEach((item, index) => {
      const prefix = isBatch ? `events.${index}` : '';
      const result = validateUsageEvent(item, prefix, {
        rateCard: this.rateCard,
        now: this.clock.now(),
        maxFutureSkewSeconds: this.config.MAX_FUTURE_SKEW_SECONDS,
      });
      if ('issues' in result) return void issues.push(...result.issues);
      const event = result.event;
      accountIds.push(event.accountId);
      const meaning = usageFingerprint(event);
      const previous = seen.get(key(event));
      if (previous === undefined) {
        seen.set(key(event), meaning);
        events.push(event);
      } else if (previous === meaning) {
        repeatedIds.push(event.id);
      } else {
        issues.push({ field: `${prefix}.id`, reason: 'appears earlier in the batch with different content' });
      }
    });
    if (issues.length > 0) throw new ContractViolation('INVALID_PAYLOAD', issues);
    return { events, repeatedIds, accountIds, fingerprints: seen };
  }

  /**
   * Reserves, for request `requestId`, the ids not seen before, and reads the others' reservation, in one transaction
   * that commits only when no id was reserved with other content (else IDEMPOTENCY_CONFLICT, and the batch reserves
   * nothing). A request with one of these ids waits for this transaction's end, so it never sees a reservation that
   * is then given back. Ids are reserved in key order, so two batches sharing ids cannot deadlock. The same content
   * reserved by a request that has not produced it (in flight, or failed) is taken over: this request produces it.
   */
  private reserve(events: UsageEventRequest[], fingerprints: ReadonlyMap<string, string>, requestId: string): Promise<{ reserved: Set<string>; earlier: Map<string, Reservation> }> {
    const schema = `"${this.config.DATABASE_SCHEMA}"`;
    return this.db.transaction(async (tx) => {
      const ours: { account_id: string; usage_id: string }[] = await tx.query(
        `with request as (insert into ${schema}.ingest_requests (request_id) values ($4)),
              input (account_id, usage_id, fingerprint) as (select * from unnest($1::text[], $2::text[], $3::text[]))
         insert into ${schema}.accepted_usage (account_id, usage_id, fingerprint, request_id)
         select account_id, usage_id, fingerprint, $4 from input order by account_id, usage_id
         on conflict do nothing returning account_id, usage_id`,
        [events.map((e) => e.accountId), events.map((e) => e.id), events.map((e) => fingerprints.get(key(e)) ?? usageFingerprint(e)), requestId],
      );
      const reserved = new Set(ours.map((row) => `${row.account_id}\u0000${row.usage_id}`));
      const earlier = new Map<string, Reservation>();
      const others = events.filter((e) => !reserved.has(key(e)));
      if (others.length === 0) return { reserved, earlier };
      // A new snapshot: it also sees reservations committed while the insert waited for them.
      const rows: { account_id: string; usage_id: string; fingerprint: string; pending: boolean }[] = await tx.query(
        `select a.account_id, a.usage_id, a.fingerprint, r.request_id is not null as pending
           from ${schema}.accepted_usage a left join ${schema}.ingest_requests r on r.request_id = a.request_id
          where (a.account_id, a.usage_id) in (select * from unnest($1::text[], $2::text[]))`,
        [others.map((e) => e.accountId), others.map((e) => e.id)],
      );
      for (const row of rows) earlier.set(`${row.account_id}\u0000${row.usage_id}`, { fingerprint: row.fingerprint, produced: !row.pending });
      const conflicts = others.filter((e) => earlier.has(key(e)) && !matchesFingerprint((earlier.get(key(e)) as Reservation).fingerprint, e));
      // Of those, the ones whose first content Kafka has not acknowledged (in flight, or its hand-off failed: a 503):
      // it may never have reached the ledger, and only it can, so the answer must not read as "already accepted".
      const pending = conflicts.filter((e) => earlier.get(key(e))?.produced === false);
      if (pending.length > 0) {
        throw new UsageIngestError(
          'USAGE_PENDING',
          'Usage ids were first sent with other content that Kafka has not acknowledged yet (in flight, or its hand-off failed): send them again with the same content as first sent (the same occurredAt and quantities) to be sure it is delivered.',
          { pendingIds: pending.map((e) => e.id), ids: conflicts.map((e) => e.id) },
        );
      }
      if (conflicts.length > 0) {
        throw new UsageIngestError('IDEMPOTENCY_CONFLICT', 'A usage id was already accepted with different content.', { ids: conflicts.map((e) => e.id) });
      }
      const takenOver = others.filter((e) => earlier.get(key(e))?.produced === false);
      if (takenOver.length > 0) {
        await tx.query(
          `update ${schema}.accepted_usage set request_id = $3 where (account_id, usage_id) in (select * from unnest($1::text[], $2::text[]))`,
          [takenOver.map((e) => e.accountId), takenOver.map((e) => e.id), requestId],
        );
      }
      return { reserved, earlier };
    });
  }

  /** The request's reservations are produced (or it had none to produce): its row goes, and with it their pending state. */
  private async produced(requestId: string): Promise<void> {
    await this.db.query(`delete from "${this.config.DATABASE_SCHEMA}".ingest_requests where request_id = $1`, [requestId]);
  }
}

/** An id's reservation: the fingerprint of the content it was accepted with, and whether Kafka acknowledged it. */
interface Reservation {
  fingerprint: string;
  produced: boolean;
}

const key = (e: UsageEventRequest) => `${e.accountId}\u0000${e.id}`;
