import type { KafkaMessage } from 'kafkajs';
import { MAX_DEAD_LETTER_DETAILS_CHARS, DeadLetterHeaders, headersToStrings, toDeadLetterMessage } from './dead-letter.publisher';

const message = (overrides: Partial<Pick<KafkaMessage, 'key' | 'value' | 'headers'>> = {}): KafkaMessage => ({
  key: Buffer.from('acct-1'),
  value: Buffer.from([0xff, 0x00, 0x7b]),
  timestamp: '1732147200000',
  attributes: 0,
  offset: '42',
  headers: { trace: Buffer.from('t-1') },
  ...overrides,
});

describe('toDeadLetterMessage', () => {
  const now = new Date('2024-11-21T00:00:00.000Z');

  it('keeps the original key, bytes and headers and adds the reason and origin', () => {
    const out = toDeadLetterMessage(
      { topic: 'usage.events.v1', partition: 3, message: message(), reason: 'INVALID_JSON', details: [{ field: '(message)', reason: 'is not valid JSON' }] },
      'ledger',
      now,
    );
    expect(out.key).toBe('acct-1');
    expect(out.value).toEqual(Buffer.from([0xff, 0x00, 0x7b]));
    expect(out.headers).toEqual({
      trace: Buffer.from('t-1'),
      [DeadLetterHeaders.reason]: 'INVALID_JSON',
      [DeadLetterHeaders.details]: '[{"field":"(message)","reason":"is not valid JSON"}]',
      [DeadLetterHeaders.originalTopic]: 'usage.events.v1',
      [DeadLetterHeaders.originalPartition]: '3',
      [DeadLetterHeaders.originalOffset]: '42',
      [DeadLetterHeaders.originalTimestamp]: '1732147200000',
      [DeadLetterHeaders.consumerGroup]: 'ledger',
      [DeadLetterHeaders.failedAt]: '2024-11-21T00:00:00.000Z',
    });
  });

  it('keeps headers named like Object.prototype members, __proto__ included, as own headers', () => {
    const headers: KafkaMessage['headers'] = { valueOf: Buffer.from('v-1') };
    Object.defineProperty(headers, '__proto__', { value: Buffer.from('p-1'), enumerable: true });
    const out = toDeadLetterMessage({ topic: 't', partition: 0, message: message({ headers }), reason: 'X' }, 'g', now);
    expect(Object.getPrototypeOf(out.headers)).toBe(Object.prototype);
    expect(Object.keys(out.headers ?? {}).slice(0, 2)).toEqual(['valueOf', '__proto__']);
    expect(String(Object.getOwnPropertyDescriptor(out.headers, '__proto__')?.value)).toBe('p-1');
    expect(String(out.headers?.valueOf)).toBe('v-1');
  });

  it('reads headers as text, __proto__ and repeated names included', () => {
    const headers: KafkaMessage['headers'] = { valueOf: Buffer.from('v-1'), twice: [Buffer.from('a'), Buffer.from('b')] };
    Object.defineProperty(headers, '__proto__', { value: Buffer.from('p-1'), enumerable: true });
    const text = headersToStrings(headers);
    expect(Object.entries(text)).toEqual([['valueOf', 'v-1'], ['twice', 'a,b'], ['__proto__', 'p-1']]);
    expect(Object.getPrototypeOf(text)).toBe(Object.prototype);
  });

  it('reads a header sent without a value (kafkajs hands it over as null) as empty text, and keeps it null in the dead letter', () => {
    const headers = { 'x-empty': null, 'x-list': [Buffer.from('a'), null] } as unknown as KafkaMessage['headers'];
    expect(headersToStrings(headers)).toEqual({ 'x-empty': '', 'x-list': 'a,' });
    const out = toDeadLetterMessage({ topic: 't', partition: 0, message: message({ headers }), reason: 'X' }, 'g', now);
    expect(out.headers?.['x-empty']).toBeNull();
  });

  it('survives a null key, a null value (tombstone) and no details', () => {
    const out = toDeadLetterMessage({ topic: 't', partition: 0, message: message({ key: null, value: null, headers: undefined }), reason: 'X' }, 'g', now);
    expect(out.key).toBe('');
    expect(out.value).toEqual(Buffer.alloc(0));
    expect(out.headers?.[DeadLetterHeaders.details]).toBe('null');
  });

  it('writes bigint details as decimal strings and cuts details too long for a message, saying so', () => {
    const of = (details: unknown) => JSON.parse(String(toDeadLetterMessage({ topic: 't', partition: 0, message: message({}), reason: 'X', details }, 'g', now).headers?.[DeadLetterHeaders.details]));
    expect(of({ wouldBe: 100_000_001_000_000_000n, max: 100_000_000_000_000_000n })).toEqual({ wouldBe: '100000001000000000', max: '100000000000000000' });
    const issues = Array.from({ length: 5_000 }, (_, index) => ({ field: `a${index}`, reason: 'is not a known property' }));
    const cut = of(issues);
    expect(cut).toMatchObject({ truncated: true, length: JSON.stringify(issues).length });
    expect(cut.head.length).toBe(MAX_DEAD_LETTER_DETAILS_CHARS / 2);
  });
});
