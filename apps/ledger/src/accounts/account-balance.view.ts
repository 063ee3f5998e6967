import type { BalanceSnapshotV1 } from '@tally/contracts';
import type { BalanceView } from '@tally/ledger-domain';
import { snapshotOf } from '@tally/ledger-events';

type BucketFigures = 'allowance' | 'promotional' | 'purchased';

/**
 * The balance as the HTTP API shows it: the figures of the ledger.events.v1 snapshot (decimal credit strings),
 * the three bucket kinds grouped under `byKind`, and the stream version they include.
 */
export type BalanceResponse = Omit<BalanceSnapshotV1, BucketFigures> & {
  accountId: string;
  byKind: Pick<BalanceSnapshotV1, BucketFigures>;
  /** Stream version the figures include. */
  asOfVersion: number;
  asOf?: string;
};

export function balanceResponse(accountId: string, snapshot: BalanceSnapshotV1, version: number, asOf?: string): BalanceResponse {
  return {
    accountId,
    available: snapshot.available,
    byKind: { allowance: snapshot.allowance, promotional: snapshot.promotional, purchased: snapshot.purchased },
    held: snapshot.held,
    overdraft: snapshot.overdraft,
    allocation: snapshot.allocation,
    usedThisCycle: snapshot.usedThisCycle,
    planId: snapshot.planId,
    unlimited: snapshot.unlimited,
    cycleId: snapshot.cycleId,
    cycleEnd: snapshot.cycleEnd,
    asOfVersion: version,
    ...(asOf ? { asOf } : {}),
  };
}

export const balanceFromView = (accountId: string, view: BalanceView, version: number, asOf?: string) =>
  balanceResponse(accountId, snapshotOf(view), version, asOf);
