import type { Provider, Type } from '@nestjs/common';
import { BalanceReadRepository } from './balance.read';
import { BalanceNotifications } from './balance.notifications';
import { BalanceStreamController } from './balance-stream.controller';
import { TransactionsController } from './transactions.controller';
import { TransactionQueryService } from './transactions.query';
import { UsageController } from './usage.controller';
import { UsageExportService } from './usage-export.service';
import { UsageQueryService } from './usage.query';

/**
 * For the root module to spread in (it provides PG_POOL and LedgerConfig, and merges HISTORY_STATUS_BY_CODE
 * into the app's statusByCode so ACCOUNT_NOT_FOUND is a 404).
 */
export const HISTORY_CONTROLLERS: Type<unknown>[] = [UsageController, TransactionsController, BalanceStreamController];

export const HISTORY_PROVIDERS: Provider[] = [
  BalanceReadRepository,
  BalanceNotifications,
  UsageQueryService,
  TransactionQueryService,
  UsageExportService,
];
