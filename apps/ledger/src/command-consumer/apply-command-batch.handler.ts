import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { context, SpanKind, type Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { ParsedMessage } from '@tally/contracts';
import { FIRST_PRODUCED_AT_HEADER, type ConsumedMessage, type KafkaBatch } from '@tally/kafka';
import {
  CLOCK, REQUEST_ID_HEADER, carrierFromHeaders, contextOf, continueTrace, endSpan, isValidRequestId, isValidTraceparent, isValidTracestate, tracingEnabled, type Clock, type ConsumedTrace, type TraceCarrier,
} from '@tally/shared';
import { Rejection, type ToCommand } from '../accounts/account.commands';
import type { EventAudit } from '@tally/ledger-events';
import { AccountRepository, type BatchCommand } from '../accounts/account.repository';
import { LedgerConfig } from '../config/ledger.config';
import { LOGGER } from '../database/tokens.provider';

/**
 * The ledger's hot path, shared by the Kafka use cases (record-usage, apply-subscription-event): a batch of one
 * partition, handed over by libs/kafka's KafkaBatchTransport with the open transaction its offset commits in, is
 * turned into account commands, decided per account and appended to the event store. Two paths to exactly-once
 * effects (README, "Money and exactly-once"):
 * - shared transaction (PostgreSQL store, the default): the events are appended in the batch's transaction, so
 *   events and offset commit together or not at all;
 * - idempotent append (EventStoreDB, or EVENT_STORE_TRANSACTIONAL=false): the append commits first, on its own,
 *   and the offset after it. A crash in between redelivers the messages; they are decided again on the stream as
 *   it now is, where the decider finds their idempotency keys already applied (no events), and an append that is
 *   repeated anyway carries the same event ids at the same expected version and comes back as a duplicate.
 * A message that can never become a command, or whose command the domain refuses, is dead-lettered with the
 * reason (the consumer's decision, not the repository's); the partition keeps flowing.
 */
@Injectable()
export class ApplyCommandBatchHandler implements OnApplicationBootstrap {
  constructor(
    private readonly accounts: AccountRepository,
    private readonly config: LedgerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.runs('commands')) return;
    const exactlyOnce = this.accounts.sharesTransactions() ? 'shared-transaction' : 'idempotent-append-then-offset';
    this.logger.info({ exactlyOnce }, 'command consumers: exactly-once path');
  }

  async apply(batch: KafkaBatch<ParsedMessage>, toCommand: ToCommand): Promise<void> {
    const commands: BatchCommand[] = [];
    const sources: ConsumedMessage<ParsedMessage>[] = [];
    // When tracing is on, a `process` span per message carrying a sampled trace context (child of its producer's),
    // ending once the batch's events are appended (README "Tracing"). Off: no span, no context object; a message's
    // context is built only for a line logged about it.
    const spans: Array<ConsumedTrace | undefined> | undefined = tracingEnabled() ? [] : undefined;
    const spanName = spans ? `${batch.topic} process` : '';
    const logApplied = this.logger.isLevelEnabled('debug');
    const receivedAt = this.clock.now();
    for (const message of batch.messages) {
      const { envelope } = message.value;
      const traced = spans && continueTrace(spanName, SpanKind.CONSUMER, carrierFromHeaders(message.headers), {
        'messaging.system': 'kafka', 'messaging.destination.name': batch.topic, 'messaging.kafka.offset': message.offset,
        'messaging.destination.partition.id': String(batch.partition), 'tally.account_id': envelope.accountId, 'tally.message_id': envelope.id,
      });
      // The audit trail, recorded on the events' metadata: who sent it (usage-ingest's API key name, the envelope's
      // `actor`, unless the command names who it knows sent it), its request id and the trace it continues (the
      // process span's when traced, else the headers').
      const carrier = traced ? traced.carrier : message.headers;
      let converted: BatchCommand & { actor?: string };
      try {
        converted = toCommand(message.value, { timestamp: message.timestamp, receivedAt, firstProducedAt: message.headers[FIRST_PRODUCED_AT_HEADER] });
      } catch (error) {
        if (!(error instanceof Rejection)) throw error;
        batch.deadLetter(message, error.code, error.details);
        this.inContextOf(traced?.ctx, auditOf(envelope.actor, carrier), () => this.logRejection(message, error.code));
        endSpan(traced?.span, error);
        continue;
      }
      const audit = auditOf(converted.actor ?? envelope.actor, carrier);
      if (audit) converted.audit = audit;
      commands.push(converted);
      sources.push(message);
      spans?.push(traced);
    }
    if (commands.length === 0) return;
    try {
      // undefined when the store cannot share the offsets' transaction: the append then commits on its own, first.
      const unitOfWork = this.accounts.joinTransaction(batch.tx);
      const { saved, refused } = await this.accounts.executeBatch(commands, unitOfWork);
      // A command the domain refused changed nothing: its message goes to the dead-letter topic with the reason.
      const refusedAt = refused.length > 0 ? new Set<number>() : undefined;
      for (const { index, code, message, details } of refused) {
        refusedAt?.add(index);
        batch.deadLetter(sources[index], code, { message, details });
        this.inContextOf(spans?.[index]?.ctx, commands[index].audit, () => this.logRejection(sources[index], code));
        spans?.[index]?.span?.setAttribute('tally.refused', code);
      }
      if (logApplied) {
        sources.forEach((source, index) => {
          if (refusedAt?.has(index)) return;
          const { accountId, id } = source.value.envelope;
          this.inContextOf(spans?.[index]?.ctx, commands[index].audit, () =>
            this.logger.debug({ accountId, messageId: id, commandKey: commands[index].commandKey, offset: source.offset }, 'command applied'),
          );
        });
      }
      spans?.forEach((traced) => endSpan(traced?.span));
      // States decided in this transaction are cached only once it committed (never for an attempt rolled back).
      batch.afterCommit(() => this.accounts.remember(saved));
    } catch (error) {
      spans?.forEach((traced) => endSpan(traced?.span, error));
      this.accounts.afterFailedBatch(commands.map((c) => c.command.accountId), error);
      throw error;
    }
  }

  /** Runs `write` (a log line) in a message's context, so it carries the message's request id and trace id. */
  private inContextOf(ctx: Context | undefined, carrier: TraceCarrier | undefined, write: () => void): void {
    if (ctx) context.with(ctx, write);
    else if (carrier) context.with(contextOf(carrier), write);
    else write();
  }

  private logRejection(message: ConsumedMessage<ParsedMessage>, code: string) {
    this.logger.warn({ accountId: message.value.envelope.accountId, messageId: message.value.envelope.id, code }, 'message dead-lettered');
  }
}

/**
 * What a command records about its cause: one object per message that carries an actor, a request id or a trace
 * context (the headers are read directly, no intermediate carrier), undefined for one that carries none.
 */
function auditOf(actor: string | undefined, carried: TraceCarrier | Readonly<Record<string, string>>): EventAudit | undefined {
  const { traceparent, tracestate } = carried as TraceCarrier;
  const requestId = (carried as TraceCarrier).requestId ?? (carried as Record<string, string | undefined>)[REQUEST_ID_HEADER];
  if (actor === undefined && traceparent === undefined && requestId === undefined) return undefined;
  const audit: EventAudit = {};
  if (actor !== undefined) audit.actor = actor;
  if (isValidRequestId(requestId)) audit.requestId = requestId;
  // A producer's headers as written: only well-formed trace headers are stored (jsonb refuses a NUL) and passed on.
  if (isValidTraceparent(traceparent)) {
    audit.traceparent = traceparent;
    if (isValidTracestate(tracestate)) audit.tracestate = tracestate;
  }
  return audit;
}
