import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMessage, Topics } from '@tally/contracts';
import { parseRateCard } from '@tally/pricing';
import { Rejection } from '../accounts/account.commands';
import { usageToCommand } from './record-usage.handler';

const card = parseRateCard(readFileSync(join(__dirname, '../../../../config/rate-card.yaml'), 'utf8'));
const usage = (accountId: string) =>
  parseMessage(
    Topics.usageEvents,
    JSON.stringify({
      id: `u-${accountId}`, type: 'UsageRecorded', version: 1, accountId, occurredAt: '2026-11-21T12:00:00Z',
      data: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 100_000 },
    }),
  );
const rules = { maxFutureSkewSeconds: 600 };
/** Produced and consumed a minute after the usages above happened. */
const consumed = { timestamp: String(Date.parse('2026-11-21T12:01:00Z')), receivedAt: new Date('2026-11-21T12:01:00.050Z') };
const refusal = (run: () => unknown): Rejection => {
  try {
    run();
  } catch (error) {
    if (error instanceof Rejection) return error;
    throw error;
  }
  throw new Error('expected a Rejection');
};

describe('usageToCommand and the per-product usage topics', () => {
  const chatTopic = usageToCommand(card, { ...rules, namespaces: { topic: 'usage.events.chat.v1', prefixes: ['chat-'] } });

  it("given usage-ingest's topic (no namespaces), when any account, then RecordUsage", () => {
    expect(usageToCommand(card, rules)(usage('karma-1'), consumed)).toMatchObject({ command: { type: 'RecordUsage', accountId: 'karma-1', amount: 1_000_000n }, commandKey: 'usage:u-karma-1' });
  });

  it("given a product topic, when the account is inside its namespace, then RecordUsage as on the shared topic, its actor the topic", () => {
    expect(chatTopic(usage('chat-1'), consumed)).toEqual({ ...usageToCommand(card, rules)(usage('chat-1'), consumed), actor: 'topic:usage.events.chat.v1' });
  });

  it('given a product topic, when the account is outside its namespace, then refused ACCOUNT_OUTSIDE_NAMESPACE naming topic, account and prefixes', () => {
    const error = refusal(() => chatTopic(usage('karma-1'), consumed));
    expect(error.code).toBe('ACCOUNT_OUTSIDE_NAMESPACE');
    expect(error.details).toMatchObject({ topic: 'usage.events.chat.v1', accountId: 'karma-1', namespaces: ['chat-'] });
  });

  it('given a product topic with two prefixes (one currency across products), when either matches, then RecordUsage', () => {
    const shared = usageToCommand(card, { ...rules, namespaces: { topic: 'usage.events.suite.v1', prefixes: ['chat-', 'karma-'] } });
    expect(shared(usage('karma-1'), consumed).command).toMatchObject({ accountId: 'karma-1' });
    expect(refusal(() => shared(usage('video-1'), consumed)).code).toBe('ACCOUNT_OUTSIDE_NAMESPACE');
  });

  describe('a usage dated ahead of when it was produced and consumed', () => {
    const at = (iso: string) => Date.parse(iso);
    const sentAt = (produced: string, received: string) => ({ timestamp: String(at(produced)), receivedAt: new Date(received) });
    const toCommand = usageToCommand(card, rules);

    it('given a record produced and consumed at 11:50, when the usage is dated 12:00 (10 min ahead), then it is applied', () => {
      expect(toCommand(usage('a'), sentAt('2026-11-21T11:50:00Z', '2026-11-21T11:50:00Z')).command.type).toBe('RecordUsage');
    });

    it('given a record produced at 11:49:59.999, when the usage is dated 12:00, then refused OCCURRED_IN_FUTURE naming the field and the bound', () => {
      const error = refusal(() => toCommand(usage('a'), sentAt('2026-11-21T11:49:59.999Z', '2026-11-21T11:49:59.999Z')));
      expect(error.code).toBe('OCCURRED_IN_FUTURE');
      expect(error.details).toMatchObject({ field: 'occurredAt', latest: '2026-11-21T11:59:59.999Z', maxFutureSkewSeconds: 600 });
    });

    it('given a record that waited in Kafka (produced 11:00, consumed 12:00), then the bound is from when it was produced', () => {
      expect(refusal(() => toCommand(usage('a'), sentAt('2026-11-21T11:00:00Z', '2026-11-21T12:00:00Z'))).code).toBe('OCCURRED_IN_FUTURE');
    });

    it("given a producer whose clock runs an hour ahead (its record stamped 13:00), then the bound is from the ledger's clock", () => {
      expect(refusal(() => toCommand(usage('a'), sentAt('2026-11-21T13:00:00Z', '2026-11-21T11:00:00Z'))).code).toBe('OCCURRED_IN_FUTURE');
    });

    // A dead letter replayed (tally dlq replay) is a new record, stamped when it is sent again: a usage refused as dated
    // 15 minutes ahead passed once the replay came 6 minutes later, and was charged. The replay carries when the
    // message was first produced (x-first-produced-at); the bound is from the earliest of them. Only ever earlier: a
    // producer that writes the header itself can have its own usage refused, nothing more.
    it('given a replayed record first produced at 11:40 (sent again at 12:00), when the usage is dated 12:00, then refused OCCURRED_IN_FUTURE', () => {
      const replayed = { ...sentAt('2026-11-21T12:00:00Z', '2026-11-21T12:00:00Z'), firstProducedAt: String(at('2026-11-21T11:40:00Z')) };
      expect(refusal(() => toCommand(usage('a'), replayed)).code).toBe('OCCURRED_IN_FUTURE');
      const producedBefore = { ...sentAt('2026-11-21T12:00:00Z', '2026-11-21T12:00:00Z'), firstProducedAt: String(at('2026-11-21T11:55:00Z')) };
      expect(toCommand(usage('a'), producedBefore).command.type).toBe('RecordUsage');
      // A header that is no instant, or one later than the record, changes nothing.
      expect(toCommand(usage('a'), { ...sentAt('2026-11-21T11:55:00Z', '2026-11-21T11:55:00Z'), firstProducedAt: 'soon' }).command.type).toBe('RecordUsage');
      expect(toCommand(usage('a'), { ...sentAt('2026-11-21T11:55:00Z', '2026-11-21T11:55:00Z'), firstProducedAt: String(at('2026-11-21T13:00:00Z')) }).command.type).toBe('RecordUsage');
    });

    it('given a record with no usable timestamp (-1), then the bound is from the clock alone', () => {
      expect(toCommand(usage('a'), { timestamp: '-1', receivedAt: new Date('2026-11-21T11:55:00Z') }).command.type).toBe('RecordUsage');
      expect(refusal(() => toCommand(usage('a'), { timestamp: '-1', receivedAt: new Date('2026-11-21T11:00:00Z') })).code).toBe('OCCURRED_IN_FUTURE');
    });
  });
});
