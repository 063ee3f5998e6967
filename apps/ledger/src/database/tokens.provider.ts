/** Injection tokens the ledger's modules share. */
export const PG_POOL = Symbol('PG_POOL');
export const KAFKA_CLIENT = Symbol('KAFKA_CLIENT');
export const EVENT_STORE = Symbol('EVENT_STORE');
export const RATE_CARD = Symbol('RATE_CARD');
export const CATALOGUE = Symbol('CATALOGUE');
/** The ledger's pino logger (the one the Kafka client, the pool and the workers log with). */
export const LOGGER = Symbol('LOGGER');
