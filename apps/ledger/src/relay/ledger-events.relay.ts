import type { Logger } from 'pino';
import type { Pool, PoolClient } from 'pg';
import type { EventStore, Subscription } from '@tally/event-store';
import type { KafkaProducer } from '@tally/kafka';
import { toLedgerEnvelope } from '../accounts/account-event.codec';
import type { LedgerConfig } from '../config/ledger.config';

const RELAY_NAME = 'ledger-events';
/**
 * One relay per event store publishes at a time; others wait to take over. The advisory lock is keyed by the
 * schema (advisory locks are database-wide, and several ledgers may share a database in separate schemas).
 */
const LOCK_SQL = (fn: string) => `select ${fn}(hashtext('tally-ledger-relay'), hashtext($1)) as locked`;

/**
 * The event store is the outbox: the relay tails it in commit order (never skipping a late commit) and publishes
 * every event to ledger.events.v1 keyed by account, then stores its checkpoint. A crash between the two
 * republishes a few events; consumers are idempotent by (account, streamVersion).
 */
export class LedgerEventsRelay {
  private subscription?: Subscription;
  private lockClient?: PoolClient;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly deps: { store: EventStore; pool: Pool; producer: KafkaProducer; config: LedgerConfig; logger: Logger }) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.tryToLead();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.subscription?.stop();
    this.subscription = undefined;
    if (this.lockClient) {
      await this.lockClient.query(LOCK_SQL('pg_advisory_unlock'), [this.deps.config.DATABASE_SCHEMA]).catch(() => undefined);
      this.lockClient.release();
      this.lockClient = undefined;
    }
  }

  private async tryToLead(): Promise<void> {
    if (this.stopped) return;
    const client = await this.deps.pool.connect();
    const { rows } = await client.query<{ locked: boolean }>(LOCK_SQL('pg_try_advisory_lock'), [this.deps.config.DATABASE_SCHEMA]);
    if (!rows[0].locked) {
      client.release();
      this.retryTimer = setTimeout(() => void this.tryToLead().catch((e) => this.deps.logger.error({ err: e }, 'relay lock failed')), 2000);
      return;
    }
    this.lockClient = client;
    const after = await this.loadCheckpoint();
    const { config, producer, logger } = this.deps;
    this.subscription = this.deps.store.subscribeToAll({
      after,
      batchSize: config.RELAY_BATCH,
      onEvents: async (events) => {
        await producer.sendEnvelopes(config.LEDGER_EVENTS_TOPIC, events.map(toLedgerEnvelope));
        await this.saveCheckpoint(events[events.length - 1].checkpoint);
      },
      onError: (error) => logger.error({ err: error }, 'relay failed; retrying from its checkpoint'),
    });
    logger.info({ after }, 'relay publishing ledger events');
  }

  private async loadCheckpoint(): Promise<string> {
    const { rows } = await this.deps.pool.query<{ checkpoint: string }>(
      `select checkpoint from "${this.deps.config.DATABASE_SCHEMA}".relay_checkpoints where name = $1`,
      [RELAY_NAME],
    );
    return rows[0]?.checkpoint ?? '';
  }

  private async saveCheckpoint(checkpoint: string): Promise<void> {
    await this.deps.pool.query(
      `insert into "${this.deps.config.DATABASE_SCHEMA}".relay_checkpoints (name, checkpoint, updated_at) values ($1, $2, now())
       on conflict (name) do update set checkpoint = excluded.checkpoint, updated_at = now()`,
      [RELAY_NAME, checkpoint],
    );
  }
}
