import type { Envelope } from '../envelope.contract';
import { olderVersion, versions, type CurrentOf } from '../message-versions.contract';
import {
  AccountOpenedV1, CreditsDepletedV1, CreditsExpiredV1, CreditsGrantedV1, GrantVoidedV1, HoldPlacedV1, HoldReleasedV1, HoldSettledV1,
  LedgerCycleStartedV1, LedgerPlanChangedV1, LowCreditThresholdCrossedV1, OverdraftIncurredV1, OverdraftSettledV1,
  OverdraftWrittenOffV1, UsageDebitedV1, UsageRefundedV1,
} from './ledger-events.v1.contract';
import { OverdraftSettledV2, UsageDebitedV2, upcastOverdraftSettledV1, upcastUsageDebitedV1 } from './ledger-events.v2.contract';

/**
 * Every ledger event type on ledger.events.v1: its current version and class, and the older versions consumers
 * still accept (upcast to the current one on parse). The ledger stores, folds and publishes the current version.
 *
 * Rollout of a new version: deploy the consumers first (they accept both), then the ledger (it publishes the new
 * one and upcasts what it reads from the store). Old versions stay here as long as a store or a topic may hold them.
 */
export const LEDGER_EVENTS = {
  AccountOpened: versions(1, AccountOpenedV1),
  CreditsGranted: versions(1, CreditsGrantedV1),
  UsageDebited: versions(2, UsageDebitedV2, [olderVersion(1, UsageDebitedV1, upcastUsageDebitedV1)]),
  CreditsExpired: versions(1, CreditsExpiredV1),
  OverdraftIncurred: versions(1, OverdraftIncurredV1),
  OverdraftWrittenOff: versions(1, OverdraftWrittenOffV1),
  OverdraftSettled: versions(2, OverdraftSettledV2, [olderVersion(1, OverdraftSettledV1, upcastOverdraftSettledV1)]),
  LowCreditThresholdCrossed: versions(1, LowCreditThresholdCrossedV1),
  CreditsDepleted: versions(1, CreditsDepletedV1),
  CycleStarted: versions(1, LedgerCycleStartedV1),
  PlanChanged: versions(1, LedgerPlanChangedV1),
  HoldPlaced: versions(1, HoldPlacedV1),
  HoldSettled: versions(1, HoldSettledV1),
  HoldReleased: versions(1, HoldReleasedV1),
  // Corrections (issue 18): new types, so consumers are deployed before the ledger writes them.
  UsageRefunded: versions(1, UsageRefundedV1),
  GrantVoided: versions(1, GrantVoidedV1),
} as const;

export type LedgerEventType = keyof typeof LEDGER_EVENTS;
export const LEDGER_EVENT_TYPES = Object.keys(LEDGER_EVENTS) as LedgerEventType[];
export const isLedgerEventType = (type: string): type is LedgerEventType => Object.prototype.hasOwnProperty.call(LEDGER_EVENTS, type);

/** type → the current payload class's instance type. */
export type LedgerEventData = { [K in LedgerEventType]: CurrentOf<(typeof LEDGER_EVENTS)[K]> };

/** `{type, data}` of every ledger event, a union narrowed by `type`. */
export type LedgerEventPayload = { [K in LedgerEventType]: { type: K; data: LedgerEventData[K] } }[LedgerEventType];

/** A parsed ledger.events.v1 envelope, narrowed by `type` (data is always the current version). */
export type LedgerEventEnvelope = { [K in LedgerEventType]: Envelope<LedgerEventData[K]> & { type: K } }[LedgerEventType];
