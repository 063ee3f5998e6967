import { Topics, parseMessage, serializeEnvelope, type CreditsExpiredV1, type LedgerEventType, type UsageDebitedV2 } from '@tally/contracts';
import type { RecordedEvent } from '@tally/event-store';
import type { AccountEvent, AccountEventType } from '@tally/ledger-domain';
import { EVENT_DATA_CODECS, type DomainData, type Equal, type Expect, type Plain, type Wire } from './account-event-data.codec';
import { decodeEvent, eventId, toLedgerEnvelope, toNewEvent } from './account-event.codec';

/** Each event type: a domain event with every field its type has (optional ones included), and its exact wire form. */
const share = { bucketId: 'g-1', kind: 'promotional', amount: 1_500_000n } as const;
const shareWire = { bucketId: 'g-1', kind: 'promotional', amount: '1.5' };
const line = { model: 'gpt-4o', feature: 'chat', amount: 1_500_001n, inputTokens: 10, outputTokens: 5, images: 1, resolution: '1024x1024', videoSeconds: 2 };
const lineWire = { ...line, amount: '1.500001' };
const at = '2026-11-02T00:00:00.000Z';

const CASES: { [K in AccountEventType]: { domain: DomainData<K>; wire: object } } = {
  AccountOpened: { domain: { accountId: 'acc-1', openedAt: at }, wire: { accountId: 'acc-1', openedAt: at } },
  CreditsGranted: {
    domain: { grantId: 'g-1', bucketId: 'g-1', kind: 'purchased', amount: 9_750_000n, expiresAt: at, source: 'pack', paymentReference: 'pay-1', grantedAt: at, overdraftSettled: 250_000n },
    wire: { grantId: 'g-1', bucketId: 'g-1', kind: 'purchased', amount: '9.75', expiresAt: at, source: 'pack', paymentReference: 'pay-1', grantedAt: at, overdraftSettled: '0.25' },
  },
  UsageDebited: {
    domain: {
      usageId: 'u-1', amount: 2_000_001n, perBucket: [share], overdraft: 500_000n, pricing: { rateCardVersion: 'rc-1', lines: [line] }, feature: 'chat',
      models: ['gpt-4o'], occurredAt: at, debitedAt: at, holdId: 'h-1', metadata: { project: 'p-42' },
    },
    wire: {
      usageId: 'u-1', amount: '2.000001', perBucket: [shareWire], overdraft: '0.5', pricing: { rateCardVersion: 'rc-1', lines: [lineWire] }, feature: 'chat',
      models: ['gpt-4o'], occurredAt: at, debitedAt: at, holdId: 'h-1', metadata: { project: 'p-42' },
    },
  },
  CreditsExpired: {
    domain: { bucketId: 'g-1', kind: 'allowance', amount: 1n, reason: 'cycle-reset', expiredAt: at },
    wire: { bucketId: 'g-1', kind: 'allowance', amount: '0.000001', reason: 'cycle-reset', expiredAt: at },
  },
  OverdraftIncurred: { domain: { usageId: 'u-1', amount: 500_000n, total: 1_500_000n }, wire: { usageId: 'u-1', amount: '0.5', total: '1.5' } },
  OverdraftWrittenOff: { domain: { usageId: 'u-1', amount: 500_000n }, wire: { usageId: 'u-1', amount: '0.5' } },
  OverdraftSettled: { domain: { grantId: 'g-2', amount: 250_000n, remaining: 0n }, wire: { grantId: 'g-2', amount: '0.25', remaining: '0' } },
  LowCreditThresholdCrossed: {
    domain: { thresholdPercent: 20, cycleId: 'c-1', available: 19_000_000n, allocation: 100_000_000n },
    wire: { thresholdPercent: 20, cycleId: 'c-1', available: '19', allocation: '100' },
  },
  CreditsDepleted: { domain: { cycleId: 'c-1', usageId: 'u-1' }, wire: { cycleId: 'c-1', usageId: 'u-1' } },
  CycleStarted: {
    domain: { cycleId: 'c-1', planId: 'pro', periodStart: at, periodEnd: at, allocation: 100_000_000n, unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
    wire: { cycleId: 'c-1', planId: 'pro', periodStart: at, periodEnd: at, allocation: '100', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
  },
  PlanChanged: {
    domain: { changeId: 'ch-1', planId: 'team', unlimited: true, thresholds: [], overdraftPolicy: 'write-off' },
    wire: { changeId: 'ch-1', planId: 'team', unlimited: true, thresholds: [], overdraftPolicy: 'write-off' },
  },
  HoldPlaced: { domain: { holdId: 'h-1', amount: 1_500_000n, perBucket: [share], expiresAt: at }, wire: { holdId: 'h-1', amount: '1.5', perBucket: [shareWire], expiresAt: at } },
  HoldSettled: {
    domain: { holdId: 'h-1', usageId: 'u-1', heldAmount: 3_000_000n, settledAmount: 2_000_000n, releasedAmount: 1_000_000n },
    wire: { holdId: 'h-1', usageId: 'u-1', heldAmount: '3', settledAmount: '2', releasedAmount: '1' },
  },
  HoldReleased: { domain: { holdId: 'h-1', amount: 1_500_000n, reason: 'expired' }, wire: { holdId: 'h-1', amount: '1.5', reason: 'expired' } },
  UsageRefunded: {
    domain: {
      refundId: 'refund:r-1', usageId: 'u-1', amount: 4_500_000n, requestedAmount: 4_500_000n, restored: [share], forfeited: [share],
      reissued: { bucketId: 'refund:r-1', amount: 1_000_000n }, overdraftReduced: 250_000n, uncharged: 250_000n,
      perModel: [{ model: 'gpt-4o', amount: 4_500_000n }], restoreExpired: true, reason: 'model answered garbage', refundedAt: at,
    },
    wire: {
      refundId: 'refund:r-1', usageId: 'u-1', amount: '4.5', requestedAmount: '4.5', restored: [shareWire], forfeited: [shareWire],
      reissued: { bucketId: 'refund:r-1', amount: '1' }, overdraftReduced: '0.25', uncharged: '0.25',
      perModel: [{ model: 'gpt-4o', amount: '4.5' }], restoreExpired: true, reason: 'model answered garbage', refundedAt: at,
    },
  },
  GrantVoided: {
    domain: { voidId: 'void:v-1', grantId: 'g-1', bucketId: 'g-1', kind: 'promotional', amount: 1_500_000n, reason: 'granted twice', voidedAt: at },
    wire: { voidId: 'void:v-1', grantId: 'g-1', bucketId: 'g-1', kind: 'promotional', amount: '1.5', reason: 'granted twice', voidedAt: at },
  },
};

const eventOf = (type: AccountEventType): AccountEvent => ({ type, data: CASES[type].domain }) as AccountEvent;
const recorded = (event: AccountEvent, version = 1): RecordedEvent => {
  const stored = toNewEvent('acc-1', `key-${event.type}`, 0, event, {
    available: '0', allowance: '0', promotional: '0', purchased: '0', held: '0', overdraft: '0', allocation: '0', usedThisCycle: '0',
    cycleId: null, cycleEnd: null, planId: null, unlimited: false,
  });
  return { ...stored, streamId: 'account-acc-1', version, metadata: stored.metadata ?? {}, recordedAt: new Date(at), checkpoint: '1' };
};

describe('per-event codecs', () => {
  describe.each(Object.keys(CASES) as AccountEventType[])('%s', (type) => {
    const codec = EVENT_DATA_CODECS[type] as { encode(d: object): object; decode(w: object): object };

    it('encodes every amount by name, nested shares and pricing lines included, and nothing else', () => {
      expect(codec.encode(CASES[type].domain)).toEqual(CASES[type].wire);
    });

    it('decodes its wire form back to the same domain data', () => {
      expect(codec.decode(JSON.parse(JSON.stringify(CASES[type].wire)))).toEqual(CASES[type].domain);
    });

    it('stores, publishes and parses as the current version of its contract class', () => {
      const stored = recorded(eventOf(type));
      const parsed = parseMessage(Topics.ledgerEvents, serializeEnvelope(toLedgerEnvelope(stored)));
      expect(parsed.type).toBe(type);
      expect(decodeEvent({ type: parsed.type, data: JSON.parse(JSON.stringify(parsed.data)) })).toEqual(eventOf(type));
    });
  });

  it('optional fields absent in the domain are absent on the wire, and back', () => {
    const bare = { grantId: 'g-1', bucketId: 'g-1', kind: 'promotional', amount: 1n, source: 'promo', grantedAt: at } as const;
    expect(EVENT_DATA_CODECS.CreditsGranted.encode(bare)).toEqual({ ...bare, amount: '0.000001' });
    expect(Object.keys(EVENT_DATA_CODECS.CreditsGranted.decode({ ...bare, amount: '0.000001' })).sort()).toEqual(Object.keys(bare).sort());
  });

  it('UsageDebited: no labels in the domain is metadata {} on the wire (v2 always carries it), and {} decodes to no labels', () => {
    const { metadata: _labels, ...unlabelled } = CASES.UsageDebited.domain;
    expect(EVENT_DATA_CODECS.UsageDebited.encode(unlabelled)).toMatchObject({ metadata: {} });
    const unlabelledWire = { ...CASES.UsageDebited.wire, metadata: {} } as UsageDebitedV2;
    expect(EVENT_DATA_CODECS.UsageDebited.decode(unlabelledWire)).not.toHaveProperty('metadata');
  });
});

describe('event ids', () => {
  // Stored events carry these ids: a retry after a crash must make the same ones, whatever computes the hash.
  it.each([
    ['acc-1', 'usage:u-1', 0, 'cb906fe1-0d2e-57ea-a097-d07fa27ad89f'],
    ['acc-é', 'grant:g ✓', 2, '785ffe01-ac99-53c2-b86b-027954c4d111'],
  ])('%s / %s / %i is %s, as it always was (SHA-256 of the three, UUID-shaped, version 5)', (accountId, commandKey, index, id) => {
    expect(eventId(accountId, commandKey, index)).toBe(id);
  });
});

describe('stored versions', () => {
  it('new events record their payload version: 2 for UsageDebited, 1 for the others', () => {
    expect(recorded(eventOf('UsageDebited')).metadata.schemaVersion).toBe(2);
    expect(recorded(eventOf('CreditsGranted')).metadata.schemaVersion).toBe(1);
  });

  it('a UsageDebited stored by the previous version (v1 payload, no schemaVersion) folds without labels and is published as v2', () => {
    const { metadata: _labels, ...v1 } = CASES.UsageDebited.wire as Record<string, unknown>;
    const old = recorded(eventOf('UsageDebited'));
    const storedByV1: RecordedEvent = { ...old, data: v1, metadata: { balanceAfter: old.metadata.balanceAfter, commandKey: 'usage:u-1' } };
    const { metadata: _domainLabels, ...expected } = CASES.UsageDebited.domain;
    expect(decodeEvent(storedByV1)).toEqual({ type: 'UsageDebited', data: expected });
    const envelope = toLedgerEnvelope(storedByV1);
    expect(envelope).toMatchObject({ type: 'UsageDebited', version: 2, data: { ...v1, metadata: {} } });
    expect(parseMessage(Topics.ledgerEvents, serializeEnvelope(envelope)).sentVersion).toBe(2);
  });

  it('an event type the ledger does not know is refused when folding', () => {
    expect(() => decodeEvent({ type: 'CreditsRefunded', data: {} })).toThrow(/unknown account event type CreditsRefunded/);
  });
});

/*
 * Compile-time fixtures (checked by `tsc -p tsconfig.json`, which type-checks specs; Jest only strips types): the
 * ties in account-event-data.codec.ts hold today, and each kind of mismatch they exist for fails to compile.
 */
export type Fixtures = [
  Expect<Equal<AccountEventType, LedgerEventType>>,
  Expect<Equal<Plain<Wire<DomainData<'CreditsExpired'>>>, Plain<CreditsExpiredV1>>>,
  // @ts-expect-error a domain event type without a contract class
  Expect<Equal<AccountEventType | 'CreditsRefunded', LedgerEventType>>,
  // @ts-expect-error a contract class without a domain event type
  Expect<Equal<AccountEventType, LedgerEventType | 'CreditsRefunded'>>,
  // @ts-expect-error a field the domain event has and the contract class lacks
  Expect<Equal<Plain<Wire<DomainData<'CreditsExpired'> & { note: string }>>, Plain<CreditsExpiredV1>>>,
  // @ts-expect-error an amount left as bigint in the contract (the wire carries decimal strings)
  Expect<Equal<Plain<Wire<DomainData<'CreditsExpired'>>>, Plain<Omit<CreditsExpiredV1, 'amount'> & { amount: bigint }>>>,
  // @ts-expect-error a field optional on one side and required on the other
  Expect<Equal<Plain<Wire<DomainData<'CreditsExpired'>>>, Plain<Omit<CreditsExpiredV1, 'expiredAt'> & { expiredAt?: string }>>>,
  // @ts-expect-error an enum widened on one side (the contract's reason as any string)
  Expect<Equal<Plain<Wire<DomainData<'CreditsExpired'>>>, Plain<Omit<CreditsExpiredV1, 'reason'> & { reason: string }>>>,
];
