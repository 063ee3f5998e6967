import { Transform } from 'class-transformer';
import { ArrayMinSize, IsIn, IsNotEmpty, IsString, Matches, ValidateIf } from 'class-validator';
import { CommonConfig, Sensitive, splitList } from '@tally/shared';

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The operator CLI's settings: the same variables, names and validation as the services (CommonConfig:
 * DATABASE_URL, KAFKA_BROKERS, ...), with the ledger's defaults, since most commands work on the ledger's schema.
 */
export class CliConfig extends CommonConfig {
  /** Unused: the CLI serves nothing. */
  override PORT = 0;
  /** The ledger's schema: its event store, read models and consumer offsets. */
  override DATABASE_SCHEMA = 'ledger';
  override KAFKA_CLIENT_ID = 'tally-cli';
  override LOG_LEVEL = 'warn';

  /** The ledger's event store, as the ledger is configured: `postgres` (in DATABASE_SCHEMA) or `eventstoredb`. */
  @IsIn(['postgres', 'eventstoredb'])
  EVENT_STORE = 'postgres';

  /** Required with EVENT_STORE=eventstoredb. */
  @Sensitive()
  @ValidateIf((config: CliConfig) => config.EVENT_STORE === 'eventstoredb')
  @IsString()
  @IsNotEmpty({ message: 'ESDB_CONNECTION_STRING is required with EVENT_STORE=eventstoredb' })
  ESDB_CONNECTION_STRING?: string;

  /** Schemas whose `kafka_consumer_offsets` table the services' consumers store their offsets in. */
  @Transform(splitList)
  @ArrayMinSize(1)
  @Matches(SCHEMA, { each: true, message: 'OFFSETS_SCHEMAS must list lower-case SQL identifiers' })
  OFFSETS_SCHEMAS: string[] = ['ledger', 'notification'];

  /** Where the CLI records what it did that must not be done twice by accident (dead-letter replays). */
  @Matches(SCHEMA, { message: 'CLI_SCHEMA must be a lower-case SQL identifier' })
  CLI_SCHEMA = 'tally_cli';
}
