import type { Provider, Type } from '@nestjs/common';
import { BalanceReadRepository } from '../balance/balance.repository';
import { BalanceNotifications } from '../balance/balance-notifications.service';
import { BalanceStreamController } from '../balance/balance-stream.controller';
import { TransactionsController } from './transactions.controller';
import { TransactionQueryService } from './transactions.query';
import { UsageController } from './usage.controller';
import { UsageExportService } from './usage-export.service';
import { UsageQueryService } from './usage.query';

/**
 * The history endpoints and the live balance stream, with what they need; ReadModelsModule provides them
 * (and a test app can, given PG_POOL and LedgerConfig, with HISTORY_STATUS_BY_CODE so ACCOUNT_NOT_FOUND is a 404).
 */
export const HISTORY_CONTROLLERS: Type<unknown>[] = [UsageController, TransactionsController, BalanceStreamController];

export const HISTORY_PROVIDERS: Provider[] = [
  BalanceReadRepository,
  BalanceNotifications,
  UsageQueryService,
  TransactionQueryService,
  UsageExportService,
];
