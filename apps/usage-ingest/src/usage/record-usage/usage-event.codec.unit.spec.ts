import { createHash } from 'node:crypto';
import { validateInto } from '@tally/contracts';
import { canonicalUsage, matchesFingerprint, toUsageEnvelope, usageFingerprint } from './usage-event.codec';
import { UsageEventRequest } from './usage-event.request.dto';

const event = (plain: Record<string, unknown>) => validateInto(UsageEventRequest, plain);
const chat = {
  id: 'u-1', accountId: 'acct-1', occurredAt: '2026-11-21T10:00:00Z', feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300,
  metadata: { source: 'ui', session: 's-9' },
};
const reversed = (plain: Record<string, unknown>) => Object.fromEntries(Object.entries(plain).reverse());

describe('usage fingerprint', () => {
  it('is the same for the same event with its keys in another order, at every level', () => {
    const reordered = { ...reversed(chat), metadata: reversed(chat.metadata) };
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(chat));
    expect(usageFingerprint(event(reordered))).toBe(usageFingerprint(event(chat)));
  });

  it.each(['2026-11-21T10:00:00.000Z', '2026-11-21T10:00:00.000000Z', '2026-11-21T11:00:00+01:00', '2026-11-21T05:00:00-05:00'])(
    'is the same when occurredAt names the same instant as %s',
    (occurredAt) => {
      expect(usageFingerprint(event({ ...chat, occurredAt }))).toBe(usageFingerprint(event(chat)));
    },
  );

  it('is "v2:" and the SHA-256 of the canonical form in hex (stored with every usage id: it must never change)', () => {
    expect(usageFingerprint(event(chat))).toBe(`v2:${createHash('sha256').update(canonicalUsage(event(chat)), 'utf8').digest('hex')}`);
  });

  it('treats an empty metadata object as no metadata', () => {
    const { metadata: _omitted, ...bare } = chat;
    expect(usageFingerprint(event({ ...bare, metadata: {} }))).toBe(usageFingerprint(event(bare)));
  });

  it.each([
    ['another instant', { occurredAt: '2026-11-21T10:00:01Z' }],
    ['other token counts', { outputTokens: 301 }],
    ['another model', { model: 'gpt-4o-mini' }],
    ['another metadata value', { metadata: { source: 'api', session: 's-9' } }],
    ['another account', { accountId: 'acct-2' }],
    ['a hold to settle', { holdId: 'h-1' }],
  ])('differs for %s', (_name, change) => {
    expect(usageFingerprint(event({ ...chat, ...change }))).not.toBe(usageFingerprint(event(chat)));
  });

  it("keeps the order of a council's responses (it is the council's order)", () => {
    const council = { id: 'c-1', accountId: 'acct-1', occurredAt: chat.occurredAt, feature: 'council' };
    const a = { model: 'gpt-4o', inputTokens: 1, outputTokens: 2 };
    const b = { model: 'claude-sonnet-4', inputTokens: 3, outputTokens: 4 };
    expect(usageFingerprint(event({ ...council, responses: [a, b] }))).not.toBe(usageFingerprint(event({ ...council, responses: [b, a] })));
    expect(usageFingerprint(event({ ...council, responses: [a, b] }))).toBe(usageFingerprint(event({ ...council, responses: [reversed(a), reversed(b)] })));
  });

  it('writes the canonical form with sorted keys and a UTC instant with milliseconds', () => {
    expect(canonicalUsage(event({ ...chat, occurredAt: '2026-11-21T11:00:00+01:00' }))).toBe(
      '{"accountId":"acct-1","feature":"chat","id":"u-1","inputTokens":1200,"metadata":{"session":"s-9","source":"ui"},' +
        '"model":"gpt-4o","occurredAt":"2026-11-21T10:00:00.000Z","outputTokens":300}',
    );
  });

  it('still matches a fingerprint stored before canonical fingerprints for the byte-identical event, and only that', () => {
    const legacy = createHash('sha256').update(JSON.stringify(toUsageEnvelope(event(chat)))).digest('hex');
    expect(matchesFingerprint(legacy, event(chat))).toBe(true);
    expect(matchesFingerprint(legacy, event({ ...chat, outputTokens: 301 }))).toBe(false);
    expect(matchesFingerprint(usageFingerprint(event(chat)), event(reversed(chat)))).toBe(true);
  });

  it('writes, for any validated event, exactly the form fingerprints were first stored in (the first writer kept here as the reference)', () => {
    // The canonical writer as it was when "v2:" fingerprints were first stored: entries filtered, sorted, mapped, joined.
    const reference = (value: unknown): string => {
      if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
      if (typeof value === 'object' && value !== null) {
        const entries = Object.entries(value)
          .filter(([, v]) => v !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
      }
      return JSON.stringify(value);
    };
    const referenceUsage = (e: UsageEventRequest): string => {
      const { occurredAt, metadata, ...rest } = e;
      const hasMetadata = metadata !== undefined && Object.keys(metadata).length > 0;
      return reference({ ...rest, occurredAt: new Date(occurredAt).toISOString(), ...(hasMetadata ? { metadata } : {}) });
    };
    const council = { id: 'c-1', accountId: 'acct-1', occurredAt: chat.occurredAt, feature: 'council' };
    const events = [
      chat,
      { ...chat, metadata: { 'z"quote': 'é\u00e9\n', Ä: 'upper', a: '', 'key with spaces': '☃', _: 'x' } },
      { ...council, responses: [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 2 }, { outputTokens: 4, inputTokens: 3, model: 'claude-sonnet-4' }] },
      { ...chat, holdId: 'h-1', metadata: {} },
      { id: 'i-1', accountId: 'acct-2', occurredAt: '2026-11-21T11:00:00.123456+01:00', feature: 'image', model: 'gpt-image-1', images: 2, resolution: '1024x1024' },
    ];
    for (const plain of events) expect(canonicalUsage(event(plain))).toBe(referenceUsage(event(plain)));
  });
});
