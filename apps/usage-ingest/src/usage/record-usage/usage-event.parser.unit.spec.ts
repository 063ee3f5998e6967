import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseRateCard } from '@tally/pricing';
import { validateUsageEvent } from './usage-event.parser';

const ctx = {
  rateCard: parseRateCard(readFileSync(resolve(__dirname, '../../../../../config/rate-card.yaml'), 'utf8')),
  now: new Date('2026-11-21T12:00:00Z'),
  maxFutureSkewSeconds: 86_400,
};
const chat = { id: 'u-1', accountId: 'acct-1', occurredAt: '2026-11-21T10:00:00Z', feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5 };
const issuesOf = (item: unknown, prefix = '') => {
  const result = validateUsageEvent(item, prefix, ctx);
  return 'issues' in result ? result.issues : [];
};

describe('usage event validation', () => {
  // A pricing refusal names the request's own field, in the validator's dotted form.
  it('names occurredAt when no rate card was in effect then, and a council response by its dotted path', () => {
    expect(issuesOf({ ...chat, occurredAt: '2020-01-01T00:00:00Z' }, 'events.3')).toEqual([expect.objectContaining({ field: 'events.3.occurredAt' })]);
    const council = { ...chat, feature: 'council', model: undefined, inputTokens: undefined, outputTokens: undefined, responses: [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }, { model: 'nope', inputTokens: 1, outputTokens: 1 }] };
    expect(issuesOf(JSON.parse(JSON.stringify(council)))).toEqual([expect.objectContaining({ field: 'responses.1.model' })]);
  });

  it('accepts metadata of up to 32 string labels (keys up to 64 characters, values up to 512)', () => {
    const metadata = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`${i}`.padEnd(64, 'k'), 'v'.repeat(512)]));
    expect(issuesOf({ ...chat, metadata })).toEqual([]);
  });

  it.each([
    ['33 labels', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))],
    ['a value over 512 characters', { note: 'v'.repeat(513) }],
    ['a key over 64 characters', { ['k'.repeat(65)]: 'v' }],
    ['an empty key', { '': 'v' }],
    ['a number value', { count: 3 }],
    ['an object value', { nested: { deeper: 'x' } }],
    ['null', null],
    ['an array', ['x']],
    ['a string', 'x'],
  ])('refuses metadata that is %s, naming metadata', (_name, metadata) => {
    expect(issuesOf({ ...chat, metadata }, 'events.2')).toEqual([expect.objectContaining({ field: 'events.2.metadata' })]);
  });

  it.each([
    ['a NUL byte in the model', { model: 'gpt-4o\u0000x' }, 'model'],
    ['a lone high surrogate in a metadata value', { metadata: { note: 'a\ud800' } }, 'metadata.note'],
    ['a lone low surrogate in the id', { id: '\udc00' }, 'id'],
    ['a NUL byte in a council response model', { feature: 'council', model: undefined, responses: [{ model: 'x\u0000', inputTokens: 1, outputTokens: 1 }] }, 'responses.0.model'],
  ])('refuses %s with the field named and the text not quoted', (_name, change, field) => {
    const issues = issuesOf({ ...chat, ...change });
    expect(issues).toEqual([{ field, reason: 'must not contain a NUL character or an unpaired UTF-16 surrogate' }]);
  });

  it('refuses a NUL byte in a metadata key without quoting the key', () => {
    expect(issuesOf({ ...chat, metadata: { 'secret\u0000key': 'v' } })).toEqual([
      { field: 'metadata', reason: 'has a property name with a NUL character or an unpaired UTF-16 surrogate' },
    ]);
  });

  it('accepts well-formed surrogate pairs (emoji) in metadata', () => {
    expect(issuesOf({ ...chat, metadata: { mood: '🙂' } })).toEqual([]);
  });

  it('refuses holdId null', () => {
    expect(issuesOf({ ...chat, holdId: null })).toEqual([expect.objectContaining({ field: 'holdId' })]);
  });

  it('refuses an event nested 10,000 deep with a field issue, without overflowing the stack', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 10_000; i += 1) deep = { a: deep };
    expect(issuesOf({ ...chat, extra: deep })).toEqual([{ field: `extra${'.a'.repeat(31)}`, reason: 'nests deeper than 32 levels' }]);
  });
});
