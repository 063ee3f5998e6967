/**
 * The demo account of `scripts/up.sh` (issue 16): `seed` subscribes it to the Go plan (7 credits a month), grants 2
 * promotional credits, reports a few usage events through @tally/client, mints a portal token and prints the
 * credits page URL; `live` then reports a usage event every DEMO_INTERVAL_MS (default 2000) until stopped, so the
 * page's balance, bar, history and banners move while you watch (the allowance runs low in a few minutes).
 *
 * Environment: TALLY_API_KEY (a key with the admin scope: up.sh's development key), DEMO_ACCOUNT (demo-account),
 * DEMO_TIME_ZONE (the subscription's zone, default UTC), the services' ports as up.sh starts them.
 */
import { TallyClient, type UsageEvent } from '@tally/client';

const apiKey = process.env.TALLY_API_KEY ?? '';
const accountId = process.env.DEMO_ACCOUNT ?? 'demo-account';
const timeZone = process.env.DEMO_TIME_ZONE ?? 'UTC';
const urls = { usageIngest: 'http://127.0.0.1:3001', ledger: 'http://127.0.0.1:3002', subscriptionCycle: 'http://127.0.0.1:3003' };
const tally = new TallyClient({ apiKey, urls: { usageIngest: urls.usageIngest, ledger: urls.ledger } });

/** What a chat, image and video product reports: a mix that shows up by model and by feature on the page. */
const USAGE_MIX: Omit<UsageEvent, 'accountId'>[] = [
  { feature: 'chat', model: 'gpt-4o', inputTokens: 1_800, outputTokens: 900 },
  { feature: 'chat', model: 'gpt-4o-mini', inputTokens: 3_000, outputTokens: 1_200 },
  { feature: 'agent', model: 'gpt-4.1', inputTokens: 12_000, outputTokens: 4_000 },
  { feature: 'image', model: 'gpt-image-1', images: 1, resolution: '1024x1024' },
  { feature: 'image', model: 'flux-pro', images: 2, resolution: '1024x768' },
  { feature: 'video', model: 'sora', videoSeconds: 2 },
];

/** An operator call outside the product client (subscriptions and promotional grants are the billing system's). */
async function call(method: string, url: string, body: unknown): Promise<number> {
  const response = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.text();
  return response.status;
}

async function untilBalance(): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await tally.balance(accountId);
      return;
    } catch {
      await new Promise((done) => setTimeout(done, 200));
    }
  }
  throw new Error(`the demo account ${accountId} has no balance after 20 s`);
}

async function seed(): Promise<void> {
  // Idempotent: a second run finds the subscription (200 unchanged; 409 while another change races) and the grant (its idempotency key) in place.
  const subscribed = await call('PUT', `${urls.subscriptionCycle}/v1/accounts/${accountId}/subscription`, { planId: 'go', timeZone });
  if (subscribed >= 500) throw new Error(`subscribing the demo account answered ${subscribed}`);
  await untilBalance();
  const granted = await call('POST', `${urls.ledger}/v1/accounts/${accountId}/grants`, { idempotencyKey: 'demo-welcome', amount: '2', reason: 'welcome credits' });
  if (granted >= 500) throw new Error(`granting the demo credits answered ${granted}`);
  await tally.reportUsageBatch(USAGE_MIX.map((usage, index) => ({ ...usage, accountId, id: `demo-seed-${index}` })));
  const page = await tally.mintPortalToken(accountId, {
    ttlSeconds: 86_400,
    purchase: true,
    checkoutUrl: 'https://example.com/checkout',
    upgradeUrl: 'https://example.com/plans',
    timeZone,
  });
  console.log(page.pageUrl);
}

async function live(): Promise<void> {
  const interval = Number(process.env.DEMO_INTERVAL_MS ?? '2000');
  for (let n = 0; ; n++) {
    const usage = USAGE_MIX[n % USAGE_MIX.length];
    await tally.reportUsage({ ...usage, accountId }).catch((error: Error) => console.error(`[demo] usage not reported: ${error.message}`));
    await new Promise((done) => setTimeout(done, interval));
  }
}

const mode = process.argv[2];
(mode === 'live' ? live() : mode === 'seed' ? seed() : Promise.reject(new Error('usage: demo.script.ts seed|live'))).catch((error: Error) => {
  console.error(`[demo] ${error.message}`);
  process.exit(1);
});
