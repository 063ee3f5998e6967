import { Controller } from '@nestjs/common';
import { parseMessage, Topics } from '@tally/contracts';
import { KafkaBatchHandler, traceBatch, type KafkaBatch } from '@tally/kafka';
import type { LedgerEvent } from './notifications.decider';
import { RecordAlertsHandler } from './record-alerts.handler';

/**
 * ledger.events.v1 → the deliveries to make, on libs/kafka's KafkaBatchTransport: a batch of one partition is
 * recorded in the transaction that also stores the partition's offset in PostgreSQL; a message that breaks the
 * contract is dead-lettered (LEDGER_DEAD_LETTER_TOPIC) and the partition moves on. The topic actually consumed
 * and the group come from config (the transport's bindings, see ledger-events.kafka.transport.ts).
 */
@Controller()
export class LedgerEventsKafkaController {
  constructor(private readonly recordAlerts: RecordAlertsHandler) {}

  // The registry is keyed by the contract topic; the configured topic name may differ (tests).
  @KafkaBatchHandler(Topics.ledgerEvents, { parse: (_topic, message): LedgerEvent => parseMessage(Topics.ledgerEvents, message.value).envelope })
  async recordAlertsFor(batch: KafkaBatch<LedgerEvent>): Promise<void> {
    const traced = traceBatch(batch);
    try {
      await this.recordAlerts.apply(batch.tx, batch.messages.map((message) => message.value), (index) => traced.of(index));
      traced.end();
    } catch (error) {
      traced.end(error);
      throw error;
    }
  }
}
