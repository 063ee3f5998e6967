import type {
  BucketShareV1, LedgerEventData, LedgerEventType, PricingLineV1, PricingV1,
} from '@tally/contracts';
import type { AccountEvent, AccountEventType, BucketShare, PricingLine, UsagePricing } from '@tally/ledger-domain';
import { formatCredits, parseCredits } from '@tally/money';

/**
 * One codec per event type between the domain's event data (amounts as bigint micro-credits) and the contract's
 * payload at its current version (amounts as decimal credit strings), which is what the event store keeps and the
 * relay publishes. Each codec names the amounts of its type, nested shares and pricing lines included, so nothing
 * is converted by guessing from a field name.
 *
 * Compile-time ties (below): the domain's event types are exactly the contract's, and each contract class has
 * exactly the fields of its domain event with bigint ↔ string; a type or field added on one side only fails to
 * compile here (libs/ledger-events sees both: libs/ledger-domain may not import the contracts).
 */

export type DomainData<K extends AccountEventType> = Extract<AccountEvent, { type: K }>['data'];

export interface EventDataCodec<K extends AccountEventType & LedgerEventType> {
  encode(data: DomainData<K>): LedgerEventData[K];
  decode(wire: LedgerEventData[K]): DomainData<K>;
}

const credits = formatCredits;
const micros = parseCredits;

const shareToWire = ({ bucketId, kind, amount }: BucketShare): BucketShareV1 => ({ bucketId, kind, amount: credits(amount) });
const shareFromWire = ({ bucketId, kind, amount }: BucketShareV1): BucketShare => ({ bucketId, kind, amount: micros(amount) });
const lineToWire = ({ amount, ...counts }: PricingLine): PricingLineV1 => ({ ...counts, amount: credits(amount) });
const lineFromWire = ({ amount, ...counts }: PricingLineV1): PricingLine => ({ ...counts, amount: micros(amount) });
const pricingToWire = (p: UsagePricing): PricingV1 => ({ rateCardVersion: p.rateCardVersion, lines: p.lines.map(lineToWire) });
const pricingFromWire = (p: PricingV1): UsagePricing => ({ rateCardVersion: p.rateCardVersion, lines: p.lines.map(lineFromWire) });

export const EVENT_DATA_CODECS: { [K in AccountEventType]: EventDataCodec<K> } = {
  AccountOpened: {
    encode: (d) => ({ ...d }),
    decode: (w) => ({ ...w }),
  },
  CreditsGranted: {
    encode: ({ amount, overdraftSettled, ...rest }) => ({
      ...rest, amount: credits(amount), ...(overdraftSettled !== undefined && { overdraftSettled: credits(overdraftSettled) }),
    }),
    decode: ({ amount, overdraftSettled, ...rest }) => ({
      ...rest, amount: micros(amount), ...(overdraftSettled !== undefined && { overdraftSettled: micros(overdraftSettled) }),
    }),
  },
  UsageDebited: {
    // The wire (v2) always carries metadata, {} for none; the domain omits it when empty (as RecordUsage does).
    encode: ({ amount, perBucket, overdraft, pricing, models, metadata, ...rest }) => ({
      ...rest, amount: credits(amount), perBucket: perBucket.map(shareToWire), overdraft: credits(overdraft),
      pricing: pricingToWire(pricing), models: [...models], metadata: { ...metadata },
    }),
    decode: ({ amount, perBucket, overdraft, pricing, models, metadata, ...rest }) => ({
      ...rest, amount: micros(amount), perBucket: perBucket.map(shareFromWire), overdraft: micros(overdraft),
      pricing: pricingFromWire(pricing), models: [...models], ...(Object.keys(metadata).length > 0 && { metadata: { ...metadata } }),
    }),
  },
  CreditsExpired: {
    encode: ({ amount, ...rest }) => ({ ...rest, amount: credits(amount) }),
    decode: ({ amount, ...rest }) => ({ ...rest, amount: micros(amount) }),
  },
  OverdraftIncurred: {
    encode: ({ amount, total, ...rest }) => ({ ...rest, amount: credits(amount), total: credits(total) }),
    decode: ({ amount, total, ...rest }) => ({ ...rest, amount: micros(amount), total: micros(total) }),
  },
  OverdraftWrittenOff: {
    encode: ({ amount, ...rest }) => ({ ...rest, amount: credits(amount) }),
    decode: ({ amount, ...rest }) => ({ ...rest, amount: micros(amount) }),
  },
  OverdraftSettled: {
    encode: ({ amount, remaining, ...rest }) => ({ ...rest, amount: credits(amount), remaining: credits(remaining) }),
    decode: ({ amount, remaining, ...rest }) => ({ ...rest, amount: micros(amount), remaining: micros(remaining) }),
  },
  LowCreditThresholdCrossed: {
    encode: ({ available, allocation, ...rest }) => ({ ...rest, available: credits(available), allocation: credits(allocation) }),
    decode: ({ available, allocation, ...rest }) => ({ ...rest, available: micros(available), allocation: micros(allocation) }),
  },
  CreditsDepleted: {
    encode: (d) => ({ ...d }),
    decode: (w) => ({ ...w }),
  },
  CycleStarted: {
    encode: ({ allocation, thresholds, ...rest }) => ({ ...rest, allocation: credits(allocation), thresholds: [...thresholds] }),
    decode: ({ allocation, thresholds, ...rest }) => ({ ...rest, allocation: micros(allocation), thresholds: [...thresholds] }),
  },
  PlanChanged: {
    encode: ({ thresholds, ...rest }) => ({ ...rest, thresholds: [...thresholds] }),
    decode: ({ thresholds, ...rest }) => ({ ...rest, thresholds: [...thresholds] }),
  },
  HoldPlaced: {
    encode: ({ amount, perBucket, ...rest }) => ({ ...rest, amount: credits(amount), perBucket: perBucket.map(shareToWire) }),
    decode: ({ amount, perBucket, ...rest }) => ({ ...rest, amount: micros(amount), perBucket: perBucket.map(shareFromWire) }),
  },
  HoldSettled: {
    encode: ({ heldAmount, settledAmount, releasedAmount, ...rest }) => ({
      ...rest, heldAmount: credits(heldAmount), settledAmount: credits(settledAmount), releasedAmount: credits(releasedAmount),
    }),
    decode: ({ heldAmount, settledAmount, releasedAmount, ...rest }) => ({
      ...rest, heldAmount: micros(heldAmount), settledAmount: micros(settledAmount), releasedAmount: micros(releasedAmount),
    }),
  },
  HoldReleased: {
    encode: ({ amount, ...rest }) => ({ ...rest, amount: credits(amount) }),
    decode: ({ amount, ...rest }) => ({ ...rest, amount: micros(amount) }),
  },
  UsageRefunded: {
    encode: ({ amount, requestedAmount, restored, forfeited, reissued, overdraftReduced, uncharged, perModel, ...rest }) => ({
      ...rest,
      amount: credits(amount),
      ...(requestedAmount !== undefined && { requestedAmount: credits(requestedAmount) }),
      restored: restored.map(shareToWire),
      forfeited: forfeited.map(shareToWire),
      ...(reissued !== undefined && { reissued: { bucketId: reissued.bucketId, amount: credits(reissued.amount) } }),
      overdraftReduced: credits(overdraftReduced),
      uncharged: credits(uncharged),
      perModel: perModel.map((m) => ({ model: m.model, amount: credits(m.amount) })),
    }),
    decode: ({ amount, requestedAmount, restored, forfeited, reissued, overdraftReduced, uncharged, perModel, ...rest }) => ({
      ...rest,
      amount: micros(amount),
      ...(requestedAmount !== undefined && { requestedAmount: micros(requestedAmount) }),
      restored: restored.map(shareFromWire),
      forfeited: forfeited.map(shareFromWire),
      ...(reissued !== undefined && { reissued: { bucketId: reissued.bucketId, amount: micros(reissued.amount) } }),
      overdraftReduced: micros(overdraftReduced),
      uncharged: micros(uncharged),
      perModel: perModel.map((m) => ({ model: m.model, amount: micros(m.amount) })),
    }),
  },
  GrantVoided: {
    encode: ({ amount, ...rest }) => ({ ...rest, amount: credits(amount) }),
    decode: ({ amount, ...rest }) => ({ ...rest, amount: micros(amount) }),
  },
};

/** Dispatch by type: the table is keyed by type, so the codec found is the one for this event's data. */
type AnyCodec = { encode(data: AccountEvent['data']): object; decode(wire: object): AccountEvent['data'] };
const codecOf = (type: AccountEventType): AnyCodec => EVENT_DATA_CODECS[type] as AnyCodec;

export const encodeData = (event: AccountEvent): object => codecOf(event.type).encode(event.data);
export const decodeData = <K extends AccountEventType>(type: K, wire: LedgerEventData[K]): DomainData<K> => codecOf(type).decode(wire) as DomainData<K>;

// ---- compile-time ties between the domain events and the contract classes ----

export type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
export type Expect<T extends true> = T;
/** The wire form of domain data: bigint micro-credits become decimal strings; readonly is dropped. */
export type Wire<T> = T extends bigint
  ? string
  : T extends readonly (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { -readonly [K in keyof T]: Wire<T[K]> }
      : T;
/** A class's instance type as a plain object type (so it compares with mapped types field by field). */
export type Plain<T> = T extends readonly (infer U)[] ? Plain<U>[] : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;

/** Deliberate differences between a domain event and its wire form (documented at the codec). */
type WireOverrides = {
  /** v2 carries metadata always ({} = none); the domain omits it when empty. */
  UsageDebited: { metadata: Record<string, string> };
};
type Override<T, O> = Omit<T, keyof O> & O;
export type ExpectedWire<K extends AccountEventType> = Plain<K extends keyof WireOverrides ? Override<Wire<DomainData<K>>, WireOverrides[K]> : Wire<DomainData<K>>>;

/** Every domain event type has a contract class and every contract type a domain event. */
export type SameEventTypes = Expect<Equal<AccountEventType, LedgerEventType>>;
/** Field by field, per type: the contract class's fields are the domain event's, amounts as strings. */
export type SameEventFields = Expect<Equal<{ [K in AccountEventType]: ExpectedWire<K> }, { [K in AccountEventType]: Plain<LedgerEventData[K]> }>>;
