import type { BalanceSnapshotV1 } from '@tally/contracts';
import type { BalanceView } from '@tally/ledger-domain';
import { snapshotOf } from './account-event.codec';

/** The balance as the HTTP API shows it: amounts as decimal credit strings. */
export interface BalanceResponse {
  accountId: string;
  available: string;
  byKind: { allowance: string; promotional: string; purchased: string };
  held: string;
  overdraft: string;
  allocation: string;
  usedThisCycle: string;
  planId: string | null;
  unlimited: boolean;
  cycleId: string | null;
  cycleEnd: string | null;
  /** Stream version the figures include. */
  asOfVersion: number;
  asOf?: string;
}

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
