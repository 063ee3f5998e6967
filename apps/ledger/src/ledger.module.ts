import { DynamicModule, Inject, Module, type OnModuleInit } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { KafkaBatchTransport, kafkaHealth } from '@tally/kafka';
import { MetricsModule } from '@tally/metrics';
import { HEALTH_CHECKS, HealthController, postgresReady, systemClock, type Clock, type HealthChecks } from '@tally/shared';
import { ApplySubscriptionEventModule } from './apply-subscription-event/apply-subscription-event.module';
import { AuthorizeModule } from './authorize/authorize.module';
import { LedgerConfig } from './config/ledger.config';
import { KAFKA_CLIENT, PG_POOL } from './database/tokens.provider';
import { ExpiryModule } from './expiry/expiry.module';
import { GrantModule } from './grant/grant.module';
import { InfrastructureModule } from './infrastructure.module';
import { MintPortalTokenModule } from './mint-portal-token/mint-portal-token.module';
import { PurchaseModule } from './purchase/purchase.module';
import { READ_MODEL_MIGRATIONS } from './read-models';
import { ReadModelsModule } from './read-models/read-models.module';
import { RecordUsageModule } from './record-usage/record-usage.module';
import { RelayModule } from './relay/relay.module';
import { RefundUsageModule } from './refund-usage/refund-usage.module';
import { ReleaseHoldModule } from './release-hold/release-hold.module';
import { BackgroundWorkers } from './workers/background.worker';
import { ledgerConsumerChecks } from './workers/ledger.kafka.transport';
import { VoidGrantModule } from './void-grant/void-grant.module';
import { WorkersModule } from './workers/workers.module';

/**
 * The ledger service. Write side, one module per use case: record-usage and apply-subscription-event (Kafka),
 * authorize, release-hold, purchase, grant and the corrections refund-usage and void-grant (HTTP), on the account aggregate (AccountsModule); the hold and
 * grant expiry worker; the relay to ledger.events.v1. Read side: ReadModelsModule. The Kafka use cases and the
 * projection are controllers on one KafkaBatchTransport (workers/ledger.kafka.transport.ts; main.ts connects it
 * with `ledgerMicroservices`). This root module only composes them and answers readiness.
 */
@Module({})
export class LedgerModule implements OnModuleInit {
  constructor(
    @Inject(HEALTH_CHECKS) private readonly checks: HealthChecks,
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    @Inject(PG_POOL) private readonly pool: Pool,
    private readonly config: LedgerConfig,
    private readonly workers: BackgroundWorkers,
    private readonly transport: KafkaBatchTransport,
  ) {}

  static forRoot(config: LedgerConfig, clock: Clock = systemClock): DynamicModule {
    return {
      module: LedgerModule,
      imports: [
        InfrastructureModule.forRoot(config, clock, READ_MODEL_MIGRATIONS),
        TerminusModule.forRoot({ logger: false }),
        MetricsModule.forRoot({ enabled: config.METRICS_ENABLED }),
        WorkersModule,
        RecordUsageModule,
        ApplySubscriptionEventModule,
        AuthorizeModule,
        ReleaseHoldModule,
        PurchaseModule,
        GrantModule,
        RefundUsageModule,
        VoidGrantModule,
        ExpiryModule,
        RelayModule,
        ReadModelsModule,
        MintPortalTokenModule,
      ],
      controllers: [HealthController],
      // Filled in onModuleInit, once every module has added its workers.
      providers: [{ provide: HEALTH_CHECKS, useValue: {} }],
    };
  }

  /**
   * Readiness: the dependencies, then each consumer and worker this process runs (started, or still joining, and
   * not stalled): usage-consumer, subscriptions-consumer, expiry, relay, projection-consumer.
   */
  onModuleInit(): void {
    Object.assign(this.checks, {
      postgres: () => postgresReady(this.pool),
      // The topics this process reads, and the relay's: one deleted under it would stall it without an error. Not
      // for the HTTP API alone (WORKERS=none), which needs no Kafka to answer.
      ...(this.config.usesKafka() && {
        kafka: () => kafkaHealth(this.kafka, { topics: [...this.transport.topics(), ...(this.config.runs('relay') ? [this.config.LEDGER_EVENTS_TOPIC] : [])] }),
      }),
      ...ledgerConsumerChecks(this.config, this.transport, 'commands'),
      ...this.workers.healthChecks(),
      ...ledgerConsumerChecks(this.config, this.transport, 'projection'),
    });
  }
}
