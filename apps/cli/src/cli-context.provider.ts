import { createEventStore, type EventStore } from '@tally/event-store';
import { createKafkaClient } from '@tally/kafka';
import { loadConfig, serviceSession } from '@tally/shared';
import { logLevel, type Kafka } from 'kafkajs';
import { Pool } from 'pg';
import { CliConfig } from './config/cli.config';

/**
 * What a command talks to, made on first use and closed once the command ends, so `--help` and `config validate`
 * need neither PostgreSQL nor Kafka. The configuration is validated when a command first needs it.
 */
export class CliContext {
  private cachedConfig?: CliConfig;
  private cachedPool?: Pool;
  private cachedKafka?: Kafka;
  private cachedStore?: EventStore;

  /** `env`: the environment to read (tests); the process environment by default, as loadConfig reads it. */
  constructor(private readonly env?: NodeJS.ProcessEnv) {}

  get config(): CliConfig {
    return (this.cachedConfig ??= (this.env ? loadConfig(CliConfig, this.env) : loadConfig(CliConfig)));
  }

  get pool(): Pool {
    return (this.cachedPool ??= new Pool({ connectionString: this.config.DATABASE_URL, max: 4, ...serviceSession('cli') }));
  }

  get kafka(): Kafka {
    return (this.cachedKafka ??= createKafkaClient({ clientId: this.config.KAFKA_CLIENT_ID, ...this.config.kafkaConnection(), logLevel: logLevel.NOTHING, retry: { retries: 3 } }));
  }

  /** The ledger's event store, as the ledger is configured (no LISTEN: the CLI only reads). */
  get store(): EventStore {
    const config = this.config;
    return (this.cachedStore ??=
      config.EVENT_STORE === 'eventstoredb'
        ? createEventStore({ kind: 'eventstoredb', connectionString: config.ESDB_CONNECTION_STRING as string })
        : createEventStore({ kind: 'postgres', pool: this.pool, schema: config.DATABASE_SCHEMA, listen: false }));
  }

  async close(): Promise<void> {
    await this.cachedStore?.close();
    await this.cachedPool?.end();
  }
}
