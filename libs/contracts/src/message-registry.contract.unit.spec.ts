import { ContractViolation } from './contract.errors';
import { parseMessage } from './message-registry.contract';
import { Topics } from './topics.contract';
import { UsageRecordedV1 } from './messages/usage-recorded.v1.contract';

const envelope = (data: object, overrides: object = {}) =>
  JSON.stringify({ id: 'u-1', type: 'UsageRecorded', version: 1, accountId: 'acc-1', occurredAt: '2026-11-21T10:00:00Z', data, ...overrides });

const violation = (fn: () => unknown): ContractViolation => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ContractViolation) return error;
    throw error;
  }
  throw new Error('expected a ContractViolation');
};

describe('parseMessage', () => {
  it('returns a validated payload instance for a known message', () => {
    const parsed = parseMessage(Topics.usageEvents, envelope({ feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5 }));
    expect(parsed.data).toBeInstanceOf(UsageRecordedV1);
    expect(parsed.envelope.accountId).toBe('acc-1');
  });

  it('refuses garbage as INVALID_JSON', () => {
    expect(violation(() => parseMessage(Topics.usageEvents, Buffer.from('\u0000not json'))).code).toBe('INVALID_JSON');
  });

  it('names the bad envelope field', () => {
    const error = violation(() => parseMessage(Topics.usageEvents, envelope({}, { accountId: 'has spaces' })));
    expect(error.code).toBe('INVALID_ENVELOPE');
    expect(error.issues.map((i) => i.field)).toContain('accountId');
  });

  it('refuses an unknown type or version', () => {
    const error = violation(() => parseMessage(Topics.usageEvents, envelope({ feature: 'chat' }, { version: 2 })));
    expect(error.code).toBe('UNKNOWN_MESSAGE_TYPE');
  });

  it('names nested payload fields, e.g. a council response without tokens', () => {
    const error = violation(() =>
      parseMessage(Topics.usageEvents, envelope({ feature: 'council', responses: [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }, { model: 'o3' }] })),
    );
    expect(error.code).toBe('INVALID_PAYLOAD');
    expect(error.issues.map((i) => i.field)).toContain('data.responses.1.inputTokens');
  });

  it('refuses negative or fractional token counts and unknown fields', () => {
    const error = violation(() =>
      parseMessage(Topics.usageEvents, envelope({ feature: 'chat', model: 'gpt-4o', inputTokens: -1, outputTokens: 1.5, extra: true })),
    );
    expect(error.issues.map((i) => i.field).sort()).toEqual(['data.extra', 'data.inputTokens', 'data.outputTokens']);
  });

  it('refuses an amount given as a JSON number on a ledger event', () => {
    const raw = JSON.stringify({
      id: 'e-1', type: 'LowCreditThresholdCrossed', version: 1, accountId: 'acc-1', occurredAt: '2026-11-21T10:00:00Z', streamVersion: 3,
      data: { thresholdPercent: 20, cycleId: 'c-1', available: 19.5, allocation: '100' },
    });
    expect(violation(() => parseMessage(Topics.ledgerEvents, raw)).issues).toEqual([
      expect.objectContaining({ field: 'data.available' }),
    ]);
  });
});
