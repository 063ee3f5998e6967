import { DynamicModule, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { KafkaProducer, createKafkaClient, kafkaHealth } from '@tally/kafka';
import { MetricsModule } from '@tally/metrics';
import { CLOCK, HEALTH_CHECKS, HealthController, LOGGER, createLogger, postgresReadyOf, systemClock, type Clock } from '@tally/shared';
import { UsageIngestConfig } from './config/usage-ingest.config';
import { createUsageIngestDataSource, migrateUsageIngest } from './database/data-source.provider';
import { RATE_CARD, loadRateCard } from './rate-card.provider';
import { AcceptedUsageRetentionWorker } from './usage/accepted-usage-retention/accepted-usage-retention.worker';
import { RecordUsageHandler } from './usage/record-usage/record-usage.handler';
import { RecordUsageHttpController } from './usage/record-usage/record-usage.http.controller';

const KAFKA = Symbol('KAFKA');

/** Two retries (0.3 s, then 0.6 s): ride out a leader election, not a broker that is down. */
const REQUEST_PATH_RETRY = { initialRetryTime: 300, maxRetryTime: 1_000, retries: 2 };
/**
 * A produce answered within milliseconds when the broker is well: a broker that takes no more packets (paused, a
 * network partition without resets) fails the send after this, not after kafkajs's 30 s a try (1.5 minutes with the
 * retries, every request of that window waiting on it).
 */
const REQUEST_PATH_TIMEOUT_MS = 5_000;

@Module({})
export class UsageIngestModule implements OnApplicationShutdown {
  constructor(
    private readonly producer: KafkaProducer,
    private readonly db: DataSource,
  ) {}

  static forRoot(config: UsageIngestConfig, clock: Clock = systemClock): DynamicModule {
    const logger = createLogger('usage-ingest', config.LOG_LEVEL);
    return {
      module: UsageIngestModule,
      imports: [TerminusModule.forRoot({ logger: false }), MetricsModule.forRoot({ enabled: config.METRICS_ENABLED })],
      controllers: [RecordUsageHttpController, HealthController],
      providers: [
        { provide: UsageIngestConfig, useValue: config },
        { provide: CLOCK, useValue: clock },
        { provide: LOGGER, useValue: logger },
        { provide: RATE_CARD, useFactory: () => loadRateCard(config.RATE_CARD_PATH) },
        {
          provide: DataSource,
          useFactory: async () => {
            await migrateUsageIngest(config);
            return createUsageIngestDataSource(config).initialize();
          },
        },
        {
          provide: KAFKA,
          // A request waits for its send: give up within seconds (the client gets 503 + Retry-After and retries with
          // the same ids) rather than the default retry budget of about a minute while the broker is down.
          useFactory: () =>
            createKafkaClient({ clientId: `${config.KAFKA_CLIENT_ID}-usage-ingest`, ...config.kafkaConnection(), logger, retry: REQUEST_PATH_RETRY, requestTimeout: REQUEST_PATH_TIMEOUT_MS }),
        },
        {
          provide: KafkaProducer,
          inject: [KAFKA],
          useFactory: async (kafka: Parameters<typeof kafkaHealth>[0]) => {
            // Each request sends its batch and waits for it: concurrent requests share produce requests.
            const producer = new KafkaProducer(kafka, { batchConcurrentSends: true });
            await producer.connect();
            return producer;
          },
        },
        {
          provide: HEALTH_CHECKS,
          inject: [KAFKA, DataSource, KafkaProducer],
          useFactory: (kafka: Parameters<typeof kafkaHealth>[0], db: DataSource, producer: KafkaProducer) => ({
            postgres: postgresReadyOf(db),
            kafka: () => kafkaHealth(kafka, { topics: [config.USAGE_EVENTS_TOPIC] }),
            // Its one job: a cluster that answers metadata but takes no writes (in-sync replicas missing, no WRITE
            // permission) keeps the check above green while every request fails.
            producing: () => producer.checkFlowing(),
          }),
        },
        RecordUsageHandler,
        AcceptedUsageRetentionWorker,
      ],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.producer.disconnect();
    await this.db.destroy();
  }
}
