import type { QueryRunner } from 'typeorm';
import { createKafkaOffsetsMigration } from './consumer-offsets.migration';
import { quoteSchema } from './consumer-offsets.repository';

describe('createKafkaOffsetsMigration', () => {
  it('creates the schema and table idempotently and drops only the table', async () => {
    const Migration = createKafkaOffsetsMigration('ledger_app');
    const migration = new Migration();
    expect(migration.name).toBe('KafkaConsumerOffsetsLedgerApp1732147200000');
    const sql: string[] = [];
    const queryRunner = { query: async (statement: string) => void sql.push(statement) } as unknown as QueryRunner;
    await migration.up(queryRunner);
    expect(sql[0]).toBe('CREATE SCHEMA IF NOT EXISTS "ledger_app"');
    expect(sql.join('\n')).toMatch(/CREATE TABLE IF NOT EXISTS "ledger_app"\.kafka_consumer_offsets[\s\S]*PRIMARY KEY \(group_id, topic, partition\)/);
    sql.length = 0;
    await migration.down(queryRunner);
    expect(sql).toEqual(['DROP TABLE IF EXISTS "ledger_app".kafka_consumer_offsets']);
  });

  it('refuses schema names that would need quoting (they are spliced into SQL)', () => {
    expect(() => createKafkaOffsetsMigration('x"; DROP TABLE y; --')).toThrow(/invalid PostgreSQL schema name/);
    expect(() => quoteSchema('Ledger')).toThrow();
    expect(quoteSchema('ledger')).toBe('"ledger"');
  });
});
