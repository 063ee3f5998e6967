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
  const chatTopic = usageToCommand(card, { topic: 'usage.events.chat.v1', prefixes: ['chat-'] });

  it("given usage-ingest's topic (no namespaces), when any account, then RecordUsage", () => {
    expect(usageToCommand(card)(usage('karma-1'))).toMatchObject({ command: { type: 'RecordUsage', accountId: 'karma-1', amount: 1_000_000n }, commandKey: 'usage:u-karma-1' });
  });

  it("given a product topic, when the account is inside its namespace, then RecordUsage as on the shared topic", () => {
    expect(chatTopic(usage('chat-1'))).toEqual(usageToCommand(card)(usage('chat-1')));
  });

  it('given a product topic, when the account is outside its namespace, then refused ACCOUNT_OUTSIDE_NAMESPACE naming topic, account and prefixes', () => {
    const error = refusal(() => chatTopic(usage('karma-1')));
    expect(error.code).toBe('ACCOUNT_OUTSIDE_NAMESPACE');
    expect(error.details).toMatchObject({ topic: 'usage.events.chat.v1', accountId: 'karma-1', namespaces: ['chat-'] });
  });

  it('given a product topic with two prefixes (one currency across products), when either matches, then RecordUsage', () => {
    const shared = usageToCommand(card, { topic: 'usage.events.suite.v1', prefixes: ['chat-', 'karma-'] });
    expect(shared(usage('karma-1')).command).toMatchObject({ accountId: 'karma-1' });
    expect(refusal(() => shared(usage('video-1'))).code).toBe('ACCOUNT_OUTSIDE_NAMESPACE');
  });
});
