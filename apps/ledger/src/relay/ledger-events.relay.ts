import type { Logger } from 'pino';
import type { Pool, PoolClient } from 'pg';
import type { EventStore, Subscription } from '@tally/event-store';
import type { KafkaProducer, OutgoingMessage } from '@tally/kafka';
import type { RecordedEventJson } from '@tally/event-store';
import {
  NotReadyError, REQUEST_ID_HEADER, StallDetector, carrierFromMetadata, carrierHeaders, continueTrace, endSpan, tracingEnabled,
} from '@tally/shared';
import { SpanKind } from '@opentelemetry/api';
import { PUBLISH_METADATA_KEYS, accountIdOfStream, ledgerEnvelopeJson } from '@tally/ledger-events';
import type { LedgerConfig } from '../config/ledger.config';
import { notifyQueueSources, postgresNotifyQueue, postgresRelayLag, relayLagSources, relayPublishFailures, relayPublished, type NotifyQueueSource, type RelayLagSource } from './relay.metrics';

const RELAY_NAME = 'ledger-events';
/**
 * One relay per event store publishes at a time; others wait to take over. The advisory lock is keyed by the
 * schema (advisory locks are database-wide, and several ledgers may share a database in separate schemas).
 */
const LOCK_SQL = (fn: string) => `select ${fn}(hashtext('tally-ledger-relay'), hashtext($1)) as locked`;
const STANDBY_RETRY_MS = 2_000;
/** How often the leader checks that its lock connection (and so its lock) is still alive. */
const LOCK_PROBE_MS = 5_000;
/**
 * Readiness: not ready once publishing has failed 5 times in a row or for 30 s. A streak ends when a batch is
 * published and its checkpoint stored, when the subscription reaches the tail with the last checkpoint stored
 * (onCaughtUp), or when this instance stops leading. One failure can take over a minute to come (a send kafkajs
 * retries with backoff, a read up to its query timeout), so a streak ends on silence only after `quietAfterMs`,
 * longer than that: for a store that does not report reaching the tail (EventStoreDB, where one failure followed by
 * a quiet stream reads as not ready until then).
 */
const RELAY_STALL = { afterAttempts: 5, afterMs: 30_000, quietAfterMs: 180_000 };

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
  private lockProbe?: NodeJS.Timeout;
  private forgetLockClient?: () => void;
  private readonly stalls = new StallDetector(RELAY_STALL);
  /** tally_relay_lag_*: read from the PostgreSQL event store at scrape time (not available on EventStoreDB). */
  private readonly lag?: RelayLagSource;
  /** tally_postgres_notify_queue_usage_ratio: the read models notify through PostgreSQL whichever the event store. */
  private readonly notifyQueue: NotifyQueueSource;

  constructor(private readonly deps: { store: EventStore; pool: Pool; producer: KafkaProducer; config: LedgerConfig; logger: Logger }) {
    if (deps.config.EVENT_STORE === 'postgres') this.lag = postgresRelayLag(deps.pool, deps.config.DATABASE_SCHEMA, RELAY_NAME);
    this.notifyQueue = postgresNotifyQueue(deps.pool);
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.lag) relayLagSources.add(this.lag);
    notifyQueueSources.add(this.notifyQueue);
    await this.tryToLead();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.lag) relayLagSources.delete(this.lag);
    notifyQueueSources.delete(this.notifyQueue);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // An attempt to lead still in flight (a background start, a standby's retry) finishes first: tearing down
    // while it runs would let it subscribe afterwards and leave a publisher nobody stops.
    await this.leading?.catch(() => undefined);
    await this.subscription?.stop();
    this.subscription = undefined;
    await this.checkpointWritten().catch((error: unknown) => this.deps.logger.error({ err: error }, 'relay checkpoint not saved on stop; its events will be published again'));
    const client = this.lockClient;
    if (client) {
      this.releaseLockClient();
      await this.giveUpLock(client);
    }
  }

  /** Readiness: throws a NotReadyError while publishing keeps failing (attempts, since, last error). */
  checkFlowing(): void {
    const [stalled] = this.stalls.stalled();
    if (stalled) throw new NotReadyError(`relay to ${this.deps.config.LEDGER_EVENTS_TOPIC} failing: ${stalled.attempts} attempts since ${stalled.since}: ${stalled.lastError}`, { ...stalled });
  }

  /** The attempt to lead in flight, if any (see stop). */
  private leading?: Promise<void>;

  private async tryToLead(): Promise<void> {
    const attempt = this.lead();
    this.leading = attempt;
    try {
      await attempt;
    } finally {
      if (this.leading === attempt) this.leading = undefined;
    }
  }

  private async lead(): Promise<void> {
    if (this.stopped) return;
    const client = await this.deps.pool.connect();
    let locked: boolean;
    try {
      ({ rows: [{ locked }] } = await client.query<{ locked: boolean }>(LOCK_SQL('pg_try_advisory_lock'), [this.deps.config.DATABASE_SCHEMA]));
    } catch (error) {
      client.release(error as Error);
      throw error;
    }
    if (!locked) {
      client.release();
      // A standby: another instance publishes; a publish streak from when this one led is not this one's to report.
      this.stalls.succeeded('lead');
      this.stalls.succeeded('publish');
      if (!this.stopped) this.retryTimer = setTimeout(() => this.retryToLead(), STANDBY_RETRY_MS);
      return;
    }
    this.lockClient = client;
    const { config, logger } = this.deps;
    let after: string;
    try {
      // The lock lives as long as PostgreSQL keeps this session. A leader that dies without closing its connection
      // (its host lost, a network cut, the process frozen) would keep it until TCP keepalive gives up, hours later,
      // and no instance would publish; PostgreSQL ends a session idle this long (the probe every LOCK_PROBE_MS keeps
      // a live leader's busy), which frees the lock for a standby.
      await client.query(`SET idle_session_timeout = ${config.RELAY_LOCK_IDLE_TIMEOUT_SECONDS * 1000}`);
      // A checkpoint still being written by this instance's previous lead lands first, so it is the one read.
      await this.checkpointWritten().catch(() => undefined);
      after = await this.loadCheckpoint();
    } catch (error) {
      await this.giveUpLock(client);
      throw error;
    }
    this.stalls.succeeded('lead');
    this.watchLock(client);
    try {
      this.subscribe(client, after);
    } catch (error) {
      // A stored checkpoint this store cannot read (hand-edited, say): refused at once, with the lock given back.
      this.releaseLockClient();
      await this.giveUpLock(client);
      throw error;
    }
    logger.info({ after }, 'relay publishing ledger events');
  }

  /** Gives the lock back and closes its session (it carries idle_session_timeout), so any instance can take over. */
  private async giveUpLock(client: PoolClient): Promise<void> {
    if (this.lockClient === client) this.lockClient = undefined;
    await client.query(LOCK_SQL('pg_advisory_unlock'), [this.deps.config.DATABASE_SCHEMA]).then(() => client.release(true), (e: Error) => client.release(e));
  }

  private subscribe(client: PoolClient, after: string): void {
    const { config, producer, logger } = this.deps;
    this.subscription = this.deps.store.subscribeToAllJson({
      after,
      metadataKeys: PUBLISH_METADATA_KEYS,
      batchSize: config.RELAY_BATCH,
      onEvents: async (events) => {
        // The previous batch's checkpoint was written while this batch was read; a failed write fails this batch
        // (retried from the subscription's checkpoint, which a later write will store).
        await this.checkpointWritten();
        // Once the lock is gone another instance may lead: publish nothing more (stopping is under way).
        if (this.lockClient !== client) throw new Error('relay lost its lock');
        await publishTraced(producer, config.LEDGER_EVENTS_TOPIC, events);
        relayPublished.inc(events.length);
        // Not waited for here: it is written while the next batch is read and published. Only after the publish
        // resolved, so it never gets ahead of what Kafka has; a crash before it lands republishes (consumers are
        // idempotent by account and stream version).
        this.checkpointSaved = false;
        this.checkpointing = this.saveCheckpoint(events[events.length - 1].checkpoint).then(
          () => {
            this.checkpointSaved = true;
            this.stalls.succeeded('publish');
          },
          (error: unknown) => error as Error,
        );
      },
      // At the tail with the last checkpoint stored: flowing. A checkpoint write in flight or failed (its failure is
      // seen at the next batch) ends nothing: its own success does, or the next batch's failure counts on.
      onCaughtUp: () => {
        if (this.checkpointSaved) this.stalls.succeeded('publish');
      },
      onError: (error) => {
        relayPublishFailures.inc();
        const streak = this.stalls.failed('publish', { topic: config.LEDGER_EVENTS_TOPIC }, error);
        logger.error({ err: error, attempt: streak.attempts, failingSince: streak.since }, 'relay failed; retrying from its checkpoint');
      },
    });
  }

  /**
   * The session-level advisory lock lives and dies with its connection: a PostgreSQL restart, a terminated backend
   * or a network cut frees it, and another instance may take the lead. Notice it (the client's 'error' event, or a
   * probe query failing), stop publishing and compete for the lead again.
   */
  private watchLock(client: PoolClient): void {
    const onError = (error: Error) => this.lostLock(client, error);
    client.on('error', onError);
    this.lockProbe = setInterval(() => {
      client.query('select 1').catch((error: Error) => this.lostLock(client, error));
    }, LOCK_PROBE_MS);
    this.lockProbe.unref();
    this.forgetLockClient = () => client.removeListener('error', onError);
  }

  /** Stops watching the lock client and forgets it (the caller releases it). */
  private releaseLockClient(): void {
    clearInterval(this.lockProbe);
    this.lockProbe = undefined;
    this.forgetLockClient?.();
    this.forgetLockClient = undefined;
    this.lockClient = undefined;
  }

  private lostLock(client: PoolClient, error: Error): void {
    if (this.lockClient !== client) return;
    this.releaseLockClient();
    // Publishing stops here; whether it fails from now on is whichever instance leads next to report.
    this.stalls.succeeded('publish');
    client.release(error);
    this.deps.logger.warn({ err: error.message }, 'relay lost its lock connection: stopping, then taking the lead again');
    const subscription = this.subscription;
    this.subscription = undefined;
    void (subscription?.stop() ?? Promise.resolve())
      .catch((e: unknown) => this.deps.logger.error({ err: e }, 'relay subscription did not stop cleanly'))
      .finally(() => {
        if (!this.stopped) this.retryTimer = setTimeout(() => this.retryToLead(), STANDBY_RETRY_MS);
      });
  }

  /** A standby's retry must never end the relay: a failure (e.g. PostgreSQL down) is reported and retried. */
  private retryToLead(): void {
    this.tryToLead().catch((error: unknown) => {
      const streak = this.stalls.failed('lead', { step: 'take the relay lock' }, error);
      this.deps.logger.error({ err: error, attempt: streak.attempts }, 'relay lock failed; retrying');
      if (!this.stopped) this.retryTimer = setTimeout(() => this.retryToLead(), STANDBY_RETRY_MS);
    });
  }

  private async loadCheckpoint(): Promise<string> {
    const { rows } = await this.deps.pool.query<{ checkpoint: string }>(
      `select checkpoint from "${this.deps.config.DATABASE_SCHEMA}".relay_checkpoints where name = $1`,
      [RELAY_NAME],
    );
    return rows[0]?.checkpoint ?? '';
  }

  /** Whether the last checkpoint write has succeeded (none yet: true). */
  private checkpointSaved = true;

  /** The checkpoint write in flight (see onEvents): resolves to the error it failed with, if it did. */
  private checkpointing?: Promise<Error | void>;

  /** Waits for the checkpoint write in flight and throws what it failed with (once). */
  private async checkpointWritten(): Promise<void> {
    const writing = this.checkpointing;
    this.checkpointing = undefined;
    const failed = await writing;
    if (failed) throw failed;
  }

  /** Once per page: named, so PostgreSQL parses and plans it once per connection (as the event store's statements). */
  private async saveCheckpoint(checkpoint: string): Promise<void> {
    const schema = this.deps.config.DATABASE_SCHEMA;
    await this.deps.pool.query({
      name: `tally-relay-checkpoint:${schema}`,
      text: `insert into "${schema}".relay_checkpoints (name, checkpoint, updated_at) values ($1, $2, now())
       on conflict (name) do update set checkpoint = excluded.checkpoint, updated_at = now()`,
      values: [RELAY_NAME, checkpoint],
    });
  }
}

/**
 * Publishes stored events with the trace context and request id their command left in their metadata (Kafka
 * headers), so the projection and notifications continue the request's trace however much later the relay runs.
 * Each event is published as the JSON text ledgerEnvelopeJson splices from the stored texts (never parsed here).
 * Tracing off: the headers are copied from the metadata (one object per event that has them, none otherwise).
 * On: a `publish` span per traced event (child of the command's span), whose context the headers carry.
 */
async function publishTraced(producer: KafkaProducer, topic: string, events: RecordedEventJson[]): Promise<void> {
  const message = (event: RecordedEventJson, headers: Record<string, string> | undefined): OutgoingMessage => {
    const value = ledgerEnvelopeJson(event);
    const key = accountIdOfStream(event.streamId);
    return headers ? { key, value, headers } : { key, value };
  };
  if (!tracingEnabled()) {
    await producer.send(topic, events.map((event) => message(event, headersOfMetadata(headerMetadataOf(event)))));
    return;
  }
  const traces = events.map((event) =>
    continueTrace(`${topic} publish`, SpanKind.PRODUCER, carrierFromMetadata(headerMetadataOf(event)), {
      'messaging.system': 'kafka', 'messaging.destination.name': topic, 'tally.event_id': event.id, 'tally.stream_version': event.version,
    }),
  );
  try {
    await producer.send(topic, events.map((event, index) => message(event, carrierHeaders(traces[index]?.carrier))));
    traces.forEach((traced) => endSpan(traced?.span));
  } catch (error) {
    traces.forEach((traced) => endSpan(traced?.span, error));
    throw error;
  }
}

const HEADER_METADATA_KEYS = ['traceparent', 'tracestate', 'requestId'] as const;

/** The metadata keys the headers come from, parsed (an event without any: an empty object, nothing parsed). */
function headerMetadataOf({ metadataJson }: RecordedEventJson): Record<string, unknown> {
  const metadata: Record<string, unknown> = {};
  for (const key of HEADER_METADATA_KEYS) {
    const text = metadataJson[key];
    if (text !== undefined) metadata[key] = JSON.parse(text);
  }
  return metadata;
}

function headersOfMetadata(metadata: Readonly<Record<string, unknown>>): Record<string, string> | undefined {
  const { traceparent, tracestate, requestId } = metadata;
  if (typeof traceparent !== 'string' && typeof requestId !== 'string') return undefined;
  const headers: Record<string, string> = {};
  if (typeof traceparent === 'string') headers.traceparent = traceparent;
  if (typeof tracestate === 'string') headers.tracestate = tracestate;
  if (typeof requestId === 'string') headers[REQUEST_ID_HEADER] = requestId;
  return headers;
}
