import { recordedEventAsJson, type RecordedEvent, type RecordedEventJson } from '@tally/event-store';
import { PUBLISH_METADATA_KEYS, ledgerEnvelopeJson, parsedEvent, toLedgerEnvelope } from './account-event.codec';

/**
 * The relay publishes ledgerEnvelopeJson's text, spliced from the store's JSON texts; consumers must read exactly
 * what `JSON.stringify(toLedgerEnvelope(event))` would have given them.
 */
describe('ledgerEnvelopeJson', () => {
  const balanceAfter = { available: '90', allowance: '90', purchased: '0', held: '0', overdraft: '0', allocation: '100', usedThisCycle: '10', unlimited: false };
  const usageV2 = {
    usageId: 'u-1', amount: '0.5', perBucket: [{ bucketId: 'allowance:c-1', kind: 'allowance', amount: '0.5' }], overdraft: '0', feature: 'chat',
    models: ['m'], occurredAt: '2026-11-01T00:00:00.000Z', debitedAt: '2026-11-01T00:00:01.000Z', metadata: { k: 'é "quoted" \\ ☃' },
    pricing: { rateCardVersion: 'v1', lines: [{ model: 'm', feature: 'chat', amount: '0.5', inputTokens: 1, outputTokens: 2 }] },
  };
  const event = (over: Partial<RecordedEvent>): RecordedEvent => ({
    id: '4a1c2d3e-0000-5abc-8def-0123456789ab', streamId: 'account-acct-1', version: 7, type: 'UsageDebited', data: usageV2,
    metadata: { schemaVersion: 2, balanceAfter, commandKey: 'usage:u-1', actor: 'svc' }, recordedAt: new Date('2026-11-01T00:00:02.123Z'), checkpoint: '1', ...over,
  });
  /** What the relay published before: the envelope object, stringified. */
  const expected = (stored: RecordedEvent) => JSON.parse(JSON.stringify(toLedgerEnvelope(stored))) as unknown;
  /** The texts as PostgreSQL prints jsonb: a space after every colon and comma, keys in its own order. */
  const asJsonb = (stored: RecordedEvent): RecordedEventJson => {
    const json = recordedEventAsJson(stored, PUBLISH_METADATA_KEYS);
    const spaced = (text: string) => JSON.stringify(JSON.parse(text), null, 1).replace(/\n */g, ' ');
    return { ...json, dataJson: spaced(json.dataJson), metadataJson: Object.fromEntries(Object.entries(json.metadataJson).map(([k, v]) => [k, spaced(v)])) };
  };

  it('given an event stored at its current version, when published, then the texts are spliced and parse to the envelope', () => {
    const stored = event({});
    const text = ledgerEnvelopeJson(asJsonb(stored));
    expect(JSON.parse(text)).toEqual(expected(stored));
    expect(text).toContain('"data":{ "usageId": "u-1", "amount": "0.5"'); // the store's own text, not printed again
  });

  it('given a UsageDebited stored as v1 (no metadata, no schemaVersion), when published, then it is upcast to v2', () => {
    const { metadata: _dropped, ...v1 } = usageV2;
    const stored = event({ data: v1, metadata: { balanceAfter } });
    const published = JSON.parse(ledgerEnvelopeJson(asJsonb(stored))) as { version: number; data: { metadata: unknown } };
    expect(published).toEqual(expected(stored));
    expect(published).toMatchObject({ version: 2, data: { metadata: {} } });
  });

  it('given an unknown type, when published, then it goes as stored with the version its metadata names', () => {
    const stored = event({ type: 'SomethingNew', data: { x: [1, 'two'] }, metadata: { schemaVersion: 3 } });
    expect(JSON.parse(ledgerEnvelopeJson(asJsonb(stored)))).toEqual(expected(stored));
  });

  // During a rolling deploy the relay's leader may be an old replica while new ones append a type's next version: it
  // must publish what the new code would (the event as stored), not throw "no upcaster" and publish nothing for anyone.
  it('given an event stored at a version newer than this code knows, when published, then it goes as stored', () => {
    const newer = { ...usageV2, addedLater: { x: 1 } };
    const stored = event({ data: newer, metadata: { schemaVersion: 3, balanceAfter, actor: 'svc' } });
    expect(JSON.parse(ledgerEnvelopeJson(asJsonb(stored)))).toEqual({
      id: stored.id, type: 'UsageDebited', version: 3, accountId: 'acct-1', occurredAt: '2026-11-01T00:00:02.123Z', streamVersion: 7, data: newer, balanceAfter, actor: 'svc',
    });
    expect(JSON.parse(JSON.stringify(toLedgerEnvelope(stored)))).toEqual(JSON.parse(ledgerEnvelopeJson(asJsonb(stored))));
  });

  it.each([
    ['no balance and no actor', {}],
    ['a null balance', { balanceAfter: null, schemaVersion: 1 }],
    ['an actor that is not a string', { actor: 42, schemaVersion: 1, balanceAfter }],
    ['a null actor', { actor: null, schemaVersion: 1 }],
  ])('given metadata with %s, when published, then the envelope is the same', (_case, metadata) => {
    const stored = event({ type: 'CreditsExpired', data: { bucketId: 'b', kind: 'allowance', amount: '1', reason: 'cycle_end', expiredAt: '2026-11-01T00:00:00.000Z' }, metadata });
    expect(JSON.parse(ledgerEnvelopeJson(asJsonb(stored)))).toEqual(expected(stored));
  });

  it('parsedEvent reads the texts back into the event (its metadata: the keys read)', () => {
    const stored = event({});
    const { commandKey: _notRead, ...read } = stored.metadata;
    expect(parsedEvent(asJsonb(stored))).toEqual({ ...stored, metadata: read });
  });
});
