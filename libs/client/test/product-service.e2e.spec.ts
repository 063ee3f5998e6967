import { Kafka, logLevel } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { ledgerTestEnv, createTestSchema, startServiceProcess, testKafkaBrokers, waitFor, type ServiceProcess } from '@tally/testing';
import { TallyClient, TallyError, UsageReportError, type Balance } from '../src';
import { ChatProduct, type ChatModel } from './chat-product.example';

const PRODUCT_KEY = 'chat-product-key';

/**
 * Issue 16: a product service written only against libs/client (chat-product.example.ts) against the real
 * usage-ingest and ledger processes on the real Kafka and PostgreSQL: authorize and hold, stream the answer,
 * settle, read the balance (and see it change on the live stream); a failing answer releases its hold; an
 * account without enough credits gets the typed InsufficientCredits result.
 */
describe('a product service on @tally/client, end to end', () => {
  // The product's key: what a product service needs, no admin.
  const { env } = ledgerTestEnv([{ name: 'chat-product', key: PRODUCT_KEY, scopes: ['usage:write', 'accounts:read', 'holds:write', 'grants:write', 'portal:mint'] }]);
  const drops: (() => Promise<void>)[] = [];
  const services: ServiceProcess[] = [];
  let tally: TallyClient;

  beforeAll(async () => {
    const kafka = new Kafka({ clientId: 'client-e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
    await ensureTopics(kafka, Object.entries(env).filter(([name]) => name.endsWith('_TOPIC')).map(([, topic]) => topic), 3);
    const ledgerSchema = await createTestSchema('client_ledger');
    const ingestSchema = await createTestSchema('client_ingest');
    drops.push(ledgerSchema.drop, ingestSchema.drop);
    const [ledger, ingest] = await Promise.all([
      startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: ledgerSchema.schema }, 120_000),
      startServiceProcess('usage-ingest', { ...env, DATABASE_SCHEMA: ingestSchema.schema }, 120_000),
    ]);
    services.push(ledger, ingest);
    tally = new TallyClient({ apiKey: PRODUCT_KEY, urls: { ledger: ledger.base, usageIngest: ingest.base } });
  }, 180_000);

  afterAll(async () => {
    for (const service of services) await service.kill();
    for (const drop of drops) await drop();
  });

  /** Grants credits through the typed API and waits until the balance read model shows them. */
  const fund = async (accountId: string, amount: string) => {
    const { response } = await tally.api.ledger.POST('/v1/accounts/{accountId}/grants', {
      params: { path: { accountId } },
      body: { idempotencyKey: `welcome-${accountId}`, amount, reason: 'welcome credits' },
    });
    expect(response.status).toBe(201);
    await balanceWhen(accountId, (balance) => balance.available === amount);
  };
  /** Reads the balance through the client until `accept` holds (a new account is ACCOUNT_NOT_FOUND until projected). */
  const balanceWhen = (accountId: string, accept: (balance: Balance) => boolean) =>
    waitFor(async () => {
      const balance = await tally.balance(accountId).catch((error: unknown) => {
        if (error instanceof TallyError && error.code === 'ACCOUNT_NOT_FOUND') return undefined;
        throw error;
      });
      return balance && accept(balance) ? balance : undefined;
    }, 30_000, 100);

  /** Waits until the account's balance read model shows the hold the product placed for `prompt`. */
  const holdVisible = (accountId: string) => balanceWhen(accountId, (balance) => balance.held === '0.020015');
  /**
   * The simulated model: streams `tokens` tokens; after the first it waits for `afterFirstToken` (the test checks the
   * credits are reserved while the answer streams), and with `failAt` it throws at that token.
   */
  const model = (tokens: number, afterFirstToken: () => Promise<unknown>, failAt?: number): ChatModel => ({
    async *stream() {
      for (let n = 0; n < tokens; n++) {
        if (n === failAt) throw new Error('the model failed midway');
        yield `token-${n} `;
        if (n === 0) await afterFirstToken();
      }
    },
  });
  // 6 words in; the hold: 6 × 2.5/M + 2,000 × 10/M = 0.020015 credits (gpt-4o).
  const prompt = 'how many credits do I have';

  it('authorizes and holds, streams the answer, settles what it used, and the live balance shows the change', async () => {
    await fund('acct-chat', '1');
    const stop = new AbortController();
    const seen: string[] = [];
    const live = (async () => {
      for await (const available of new ChatProduct(tally, model(0, async () => undefined)).liveBalance('acct-chat', stop.signal)) seen.push(available);
    })();
    await waitFor(async () => seen.includes('1'), 10_000, 50);

    // While the answer streams, the hold shows in the balance and on the live stream (1 - 0.020015).
    const heldWhileStreaming = async () => {
      await holdVisible('acct-chat');
      await waitFor(async () => seen.includes('0.979985'), 10_000, 50);
    };
    const answer = await new ChatProduct(tally, model(500, heldWhileStreaming)).answer('acct-chat', prompt);

    if (!answer.ok) throw new Error(`expected an answer, got ${answer.reason}`);
    expect(answer.text.split(' ').filter(Boolean)).toHaveLength(500);
    expect(answer.usage).toEqual({ feature: 'chat', model: 'gpt-4o', inputTokens: 6, outputTokens: 500 });
    // Settled at the actual price: 6 × 2.5/M + 500 × 10/M = 0.005015; the rest of the hold is free again.
    const settled = await balanceWhen('acct-chat', (balance) => balance.available === '0.994985' && balance.held === '0');
    expect(settled.usedThisCycle).toBe('0.005015');
    // The live stream sees the settlement too, without polling.
    await waitFor(async () => seen.includes('0.994985'), 10_000, 50);
    expect(seen.indexOf('0.979985')).toBeLessThan(seen.indexOf('0.994985'));
    stop.abort();
    await live; // the iteration ends on abort, without an error

    // The user opens "Credits": the product mints a portal token; the page it links to reads the same balance.
    const page = await new ChatProduct(tally, model(0, async () => undefined)).creditsPage('acct-chat');
    expect(page.url).toBe(`${services[0].base.replace('127.0.0.1', 'localhost')}/portal/#token=${page.token}`);
    const reader = new TallyClient({ apiKey: page.token, urls: { ledger: services[0].base, usageIngest: services[1].base }, retry: { attempts: 1 } });
    expect((await reader.balance('acct-chat')).available).toBe('0.994985');
  }, 60_000);

  it('releases the hold when the answer fails midway, and the caller gets the error', async () => {
    await fund('acct-fail', '1');
    const product = new ChatProduct(tally, model(500, () => holdVisible('acct-fail'), 3));

    await expect(product.answer('acct-fail', prompt)).rejects.toThrow('the model failed midway');

    // The hold was placed (the model saw it) and is released: nothing charged, nothing held.
    const after = await balanceWhen('acct-fail', (balance) => balance.held === '0');
    expect(after.available).toBe('1');
  }, 60_000);

  it('places a hold once however often it is sent with the same hold id (what a retry sends)', async () => {
    await fund('acct-retry', '1');
    const first = await tally.placeHold('acct-retry', { amount: '0.25' }, { holdId: 'answer-1', ttlSeconds: 300 });
    const again = await tally.placeHold('acct-retry', { amount: '0.25' }, { holdId: 'answer-1', ttlSeconds: 300 });

    if (!first.ok || !again.ok) throw new Error('expected both holds to be placed');
    expect(again.hold).toEqual(first.hold);
    await balanceWhen('acct-retry', (balance) => balance.held === '0.25' && balance.available === '0.75');
    expect(await tally.releaseHold('acct-retry', 'answer-1')).toMatchObject({ holdId: 'answer-1', released: '0.25' });
    await balanceWhen('acct-retry', (balance) => balance.held === '0' && balance.available === '1');
  }, 60_000);

  it('answers "Insufficient Credits" as a typed result when the hold does not fit, without running the model', async () => {
    await fund('acct-poor', '0.01');
    let ran = false;
    const product = new ChatProduct(tally, {
      async *stream() {
        ran = true;
        yield 'never';
      },
    });

    const answer = await product.answer('acct-poor', prompt);

    expect(answer).toEqual({
      ok: false,
      reason: 'INSUFFICIENT_CREDITS',
      required: '0.020015',
      available: '0.01',
      hint: expect.any(String),
      message: expect.any(String),
    });
    expect(ran).toBe(false);
    expect((await tally.balance('acct-poor')).held).toBe('0');
  }, 60_000);

  it('a report of 1001 events whose last is refused can be resent as its error gives it: the 1000 accepted are not charged twice', async () => {
    await fund('acct-batch-resend', '100');
    const image = { accountId: 'acct-batch-resend', feature: 'image' as const, model: 'dall-e-3', images: 1, resolution: '1024x1024' }; // 0.04 each
    const events = Array.from({ length: 1001 }, (_, index) => (index === 1000 ? { ...image, model: 'no-such-model' } : image));

    const failure = await tally.reportUsageBatch(events).then(() => undefined, (error: unknown) => error);

    expect(failure).toBeInstanceOf(UsageReportError);
    const { events: sent, reported, field } = failure as UsageReportError;
    expect(reported.accepted).toBe(1000);
    expect(field).toBe('events.1000.model'); // the last request carried that event alone: counted in the whole list
    expect(new Set(sent.map((event) => event.id)).size).toBe(1001);
    const resent = await tally.reportUsageBatch(sent.map((event, index) => (index === 1000 ? { ...event, model: 'dall-e-3' } : event)));
    expect(resent).toMatchObject({ accepted: 1, duplicates: 1000 });
    await balanceWhen('acct-batch-resend', (balance) => balance.available === '59.96'); // 1001 × 0.04, once each
  }, 90_000);

  it('names the refused event of a later request by its index in the whole list, so correcting what it names and resending charges each once', async () => {
    await fund('acct-batch-index', '100');
    const image = { accountId: 'acct-batch-index', feature: 'image' as const, model: 'dall-e-3', images: 1, resolution: '1024x1024' }; // 0.04 each
    const events = Array.from({ length: 1003 }, (_, index) => (index === 1001 ? { ...image, model: 'no-such-model' } : image));

    const failure = (await tally.reportUsageBatch(events).then(() => undefined, (error: unknown) => error)) as UsageReportError;

    expect(failure).toBeInstanceOf(UsageReportError);
    expect({ field: failure.field, accepted: failure.reported.accepted }).toEqual({ field: 'events.1001.model', accepted: 1000 });
    // The caller corrects the event the error names, as the error's documentation says.
    const refused = Number(/^events\.(\d+)\./.exec(failure.field ?? '')?.[1]);
    const resent = await tally.reportUsageBatch(failure.events.map((event, index) => (index === refused ? { ...event, model: 'dall-e-3' } : event)));
    expect(resent).toMatchObject({ accepted: 3, duplicates: 1000 });
    await balanceWhen('acct-batch-index', (balance) => balance.available === '59.88'); // 1003 × 0.04, once each
  }, 90_000);

  it('reports 1,000 events with long labels (over 2 MiB of JSON in all) in requests usage-ingest takes, each charged once', async () => {
    await fund('acct-labels', '100');
    const labels = Object.fromEntries(['team', 'project', 'prompt', 'trace'].map((key) => [key, '日本'.repeat(256)]));
    const image = { accountId: 'acct-labels', feature: 'image' as const, model: 'dall-e-3', images: 1, resolution: '1024x1024', metadata: labels }; // 0.04 each
    const events = Array.from({ length: 1000 }, () => image);
    expect(Buffer.byteLength(JSON.stringify({ events }))).toBeGreaterThan(2 * 1024 * 1024);

    expect(await tally.reportUsageBatch(events)).toMatchObject({ accepted: 1000, duplicates: 0 });
    await balanceWhen('acct-labels', (balance) => balance.available === '60');
  }, 90_000);

  it("mints a portal token for the credits page, and the token reads that account's balance and nothing else", async () => {
    await fund('acct-portal', '3');
    const minted = await tally.mintPortalToken('acct-portal', { ttlSeconds: 300, purchase: true, checkoutUrl: 'https://chat.example/buy', timeZone: 'America/New_York' });
    expect(minted).toMatchObject({ accountId: 'acct-portal', rights: ['read', 'purchase'], links: { checkoutUrl: 'https://chat.example/buy' }, timeZone: 'America/New_York' });
    expect(minted.pageUrl).toMatch(/\/portal\/#token=/);

    // The browser's side: the token is its bearer.
    const browser = new TallyClient({ apiKey: minted.token, urls: { ledger: services[0].base, usageIngest: services[1].base }, retry: { attempts: 1 } });
    expect((await browser.balance('acct-portal')).available).toBe('3');
    await expect(browser.balance('acct-poor')).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    await expect(browser.mintPortalToken('acct-portal')).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    await expect(tally.mintPortalToken('acct-nobody')).rejects.toMatchObject({ status: 404, code: 'ACCOUNT_NOT_FOUND' });
  }, 60_000);
});
