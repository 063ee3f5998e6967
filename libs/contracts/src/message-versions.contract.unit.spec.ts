import { ContractViolation } from './contract.errors';
import { parseMessage } from './message-registry.contract';
import { olderVersion, upcastToCurrent, versions } from './message-versions.contract';
import { LEDGER_EVENTS } from './messages/ledger-events.contract';
import { UsageDebitedV1 } from './messages/ledger-events.v1.contract';
import { UsageDebitedV2, upcastUsageDebitedV1 } from './messages/ledger-events.v2.contract';
import { Topics } from './topics.contract';

const debitV1 = {
  usageId: 'u-1', amount: '1.5', perBucket: [{ bucketId: 'g-1', kind: 'promotional', amount: '1.5' }], overdraft: '0',
  pricing: { rateCardVersion: 'rc-1', lines: [{ model: 'gpt-4o', feature: 'chat', amount: '1.5', inputTokens: 10, outputTokens: 5 }] },
  feature: 'chat', models: ['gpt-4o'], occurredAt: '2026-11-02T00:00:00.000Z', debitedAt: '2026-11-02T00:00:01.000Z',
};
const ledgerMessage = (version: number, data: object) =>
  JSON.stringify({
    id: 'evt-1', type: 'UsageDebited', version, accountId: 'acc-1', occurredAt: '2026-11-02T00:00:01.000Z', data, streamVersion: 3,
  });
const violation = (fn: () => unknown): ContractViolation => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ContractViolation) return error;
    throw error;
  }
  throw new Error('expected a ContractViolation');
};

describe('UsageDebited v1 → v2 upcaster', () => {
  it('a v1 debit without labels gets metadata {} and keeps every other field as it was', () => {
    expect(upcastUsageDebitedV1(debitV1 as UsageDebitedV1)).toEqual({ ...debitV1, metadata: {} });
  });

  it('a v1 debit that did carry labels (v1 declared them optional) keeps them', () => {
    expect(upcastUsageDebitedV1({ ...debitV1, metadata: { project: 'p' } } as UsageDebitedV1).metadata).toEqual({ project: 'p' });
  });

  it('upcastToCurrent runs the chain from the stored version and is the identity on the current one', () => {
    expect(upcastToCurrent(LEDGER_EVENTS.UsageDebited, 1, debitV1)).toEqual({ ...debitV1, metadata: {} });
    const v2 = { ...debitV1, metadata: { project: 'p' } };
    expect(upcastToCurrent(LEDGER_EVENTS.UsageDebited, 2, v2)).toBe(v2);
    expect(upcastToCurrent(LEDGER_EVENTS.CreditsDepleted, 1, { usageId: 'u' })).toEqual({ usageId: 'u' });
    expect(() => upcastToCurrent(LEDGER_EVENTS.UsageDebited, 3, v2)).toThrow(/no upcaster from v3/);
  });

  it('versions must be contiguous: a gap in the chain is refused at load', () => {
    expect(() => versions(3, UsageDebitedV2, [olderVersion(1, UsageDebitedV1, upcastUsageDebitedV1)])).toThrow(/contiguous/);
  });
});

describe('parseMessage accepts both versions of UsageDebited on ledger.events.v1', () => {
  it('a v1 envelope is validated as v1 and handed over as v2 (metadata {}), remembering what was sent', () => {
    const parsed = parseMessage(Topics.ledgerEvents, ledgerMessage(1, debitV1));
    expect(parsed.type).toBe('UsageDebited');
    if (parsed.type !== 'UsageDebited') return;
    expect(parsed.sentVersion).toBe(1);
    expect(parsed.envelope.version).toBe(2);
    expect(parsed.data.metadata).toEqual({});
    expect(parsed.envelope.data).toBe(parsed.data);
    expect(parsed.data.pricing.lines[0].amount).toBe('1.5');
  });

  it('a v2 envelope is validated as v2, labels included', () => {
    const parsed = parseMessage(Topics.ledgerEvents, ledgerMessage(2, { ...debitV1, metadata: { project: 'p-42' } }));
    expect(parsed).toMatchObject({ type: 'UsageDebited', sentVersion: 2, envelope: { version: 2 }, data: { metadata: { project: 'p-42' } } });
    expect(parsed.data).toBeInstanceOf(UsageDebitedV2);
  });

  it('each version is validated by its own class: v2 requires metadata, and its labels are bounded like usage metadata', () => {
    expect(violation(() => parseMessage(Topics.ledgerEvents, ledgerMessage(2, debitV1))).issues).toEqual([
      expect.objectContaining({ field: 'data.metadata' }),
    ]);
    expect(violation(() => parseMessage(Topics.ledgerEvents, ledgerMessage(2, { ...debitV1, metadata: { project: 7 } }))).code).toBe('INVALID_PAYLOAD');
    expect(violation(() => parseMessage(Topics.ledgerEvents, ledgerMessage(1, { ...debitV1, amount: 1.5 }))).code).toBe('INVALID_PAYLOAD');
  });

  it('a version this reader does not know is refused, naming it', () => {
    const error = violation(() => parseMessage(Topics.ledgerEvents, ledgerMessage(3, { ...debitV1, metadata: {} })));
    expect(error.code).toBe('UNKNOWN_MESSAGE_TYPE');
    expect(error.issues[0].reason).toBe('UsageDebited v3 is not a known message on ledger.events.v1');
  });

  it('types other than UsageDebited are still version 1 only', () => {
    const depleted = JSON.stringify({ id: 'e', type: 'CreditsDepleted', version: 2, accountId: 'acc-1', occurredAt: '2026-11-02T00:00:00Z', data: {} });
    expect(violation(() => parseMessage(Topics.ledgerEvents, depleted)).code).toBe('UNKNOWN_MESSAGE_TYPE');
  });
});
