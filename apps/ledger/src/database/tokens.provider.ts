/** Injection tokens the ledger's modules share. */
export const PG_POOL = Symbol('PG_POOL');
export const KAFKA_CLIENT = Symbol('KAFKA_CLIENT');
export const EVENT_STORE = Symbol('EVENT_STORE');
export const RATE_CARD = Symbol('RATE_CARD');
export const CATALOGUE = Symbol('CATALOGUE');
/** The ledger's pino logger (the one the Kafka client, the pool and the workers log with). */
export const LOGGER = Symbol('LOGGER');
/**
 * The producer of the consumers' dead letters: not the relay's (KafkaProducer), whose sends go one at a time, so a
 * dead-letter topic that refuses writes (retried for about a minute) holds up the consumer that dead-letters and
 * not the publishing of every account's events.
 */
export const DEAD_LETTER_PRODUCER = Symbol('DEAD_LETTER_PRODUCER');
