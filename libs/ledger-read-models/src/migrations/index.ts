import { CreateReadModels1764300000000 } from './1764300000000-create-read-models';
import { TransactionActor1764800000000 } from './1764800000000-transaction-actor';
import { UsageRefunds1765100000000 } from './1765100000000-usage-refunds';
import { UsageLinesInRecords1765500000000 } from './1765500000000-usage-lines-in-records';
import { HistoryByType1765600000000 } from './1765600000000-history-by-type';
import { HistoryByTime1766200000000 } from './1766200000000-history-by-time';

export { CreateReadModels1764300000000, TransactionActor1764800000000, UsageRefunds1765100000000, UsageLinesInRecords1765500000000, HistoryByType1765600000000, HistoryByTime1766200000000 };

/**
 * The read models' migrations, in order: the ledger adds them to its DataSource's `migrations` (after the consumer
 * offsets migration of DATABASE_SCHEMA), and a rebuild runs them on its shadow schema.
 */
export const READ_MODEL_MIGRATIONS = [CreateReadModels1764300000000, TransactionActor1764800000000, UsageRefunds1765100000000, UsageLinesInRecords1765500000000, HistoryByType1765600000000, HistoryByTime1766200000000];
