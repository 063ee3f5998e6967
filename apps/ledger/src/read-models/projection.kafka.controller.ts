import { Controller } from '@nestjs/common';
import { Topics, parseMessage } from '@tally/contracts';
import { KafkaBatchHandler, traceBatch, type KafkaBatch } from '@tally/kafka';
import { asLedgerEnvelope, LedgerProjection, type LedgerEnvelope } from '@tally/ledger-read-models';

/**
 * Keeps the read models up to date from ledger.events.v1 with its own consumer group (PROJECTION_GROUP), on
 * libs/kafka's KafkaBatchTransport: each batch is applied in the transaction that also stores the partition
 * offset, so the read models move exactly once per event; an envelope the projection cannot use is dead-lettered.
 */
@Controller()
export class ProjectionKafkaController {
  constructor(private readonly projection: LedgerProjection) {}

  // The configured topic carries ledger.events.v1 whatever its name (tests use unique names).
  @KafkaBatchHandler(Topics.ledgerEvents, { parse: (_topic, message) => asLedgerEnvelope(parseMessage(Topics.ledgerEvents, message.value).envelope) })
  async project(batch: KafkaBatch<LedgerEnvelope>): Promise<void> {
    const traced = traceBatch(batch);
    try {
      await this.projection.apply(batch.tx, batch.messages.map((message) => message.value));
      traced.end();
    } catch (error) {
      traced.end(error);
      throw error;
    }
  }
}
