import { Module } from '@nestjs/common';
import { BackgroundWorkers } from './background.worker';
import { ledgerKafkaTransportProvider } from './ledger.kafka.transport';

/**
 * The write side's background work: the registry the relay and the expiry worker add themselves to (started after
 * bootstrap, stopped first on shutdown), and the Kafka transport the ledger's Kafka controllers run on (started with
 * the app's microservices, closed after beforeApplicationShutdown and before onApplicationShutdown).
 */
@Module({ providers: [BackgroundWorkers, ledgerKafkaTransportProvider], exports: [BackgroundWorkers, ledgerKafkaTransportProvider] })
export class WorkersModule {}
