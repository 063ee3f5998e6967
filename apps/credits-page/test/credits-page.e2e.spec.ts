import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { source as axeSource } from 'axe-core';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ensureTopics } from '@tally/kafka';
import { parseCredits } from '@tally/money';
import { Client } from 'pg';
import { PortalTokenCodec } from '@tally/shared';
import { ledgerTestEnv, createTestSchema, startServiceProcess, testDatabaseUrl, testKafkaBrokers, waitFor, type ServiceProcess } from '@tally/testing';
import { TallyClient } from '@tally/client';

/**
 * Issue 16 item 5: the credits page in a real Chromium (Debian's, driven by playwright-core) against the real
 * ledger and usage-ingest processes on the real Kafka and PostgreSQL. The page is the build the ledger serves at
 * /portal/ (npm run build:page), opened with a portal token in its fragment as a product's iframe would; usage is
 * reported through @tally/client as a product service would. Screenshots go to .cache/screenshots/, or with
 * UPDATE_SCREENSHOTS=1 to docs/screenshots/ (the README's).
 */
const ROOT = resolve(__dirname, '../../..');
const PAGE_DIR = join(ROOT, 'apps/credits-page/dist');
/** The README's screenshots are rewritten only when asked (UPDATE_SCREENSHOTS=1); otherwise a run leaves the tree clean. */
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs/screenshots') : join(ROOT, '.cache/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'credits-page-product-key';
const PORTAL_SECRET = 'credits-page-e2e-portal-secret-0123456789abcdef';
const ACCOUNT = 'acct-page';
const DAY = 86_400_000;

/** The figure a person reads ("1,234.5", "−0.006") as micro-credits. */
const micros = (text: string): bigint => parseCredits(text.trim().split(/\s+/)[0].replace(/,/g, '').replace('−', '-'));

/** RFC 4180 rows (the export quotes only what needs it). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  const endField = () => {
    row.push(field);
    field = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') endField();
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endField();
      rows.push(row);
      row = [];
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    endField();
    rows.push(row);
  }
  return rows;
}

describe('the credits page in Chromium, on the real services', () => {
  const { id, env: ledgerEnv } = ledgerTestEnv([{ name: 'product', key: KEY, scopes: ['admin'] }]);
  const env: Record<string, string> = { ...ledgerEnv, PORTAL_TOKEN_SECRET: PORTAL_SECRET, PORTAL_PAGE_DIR: PAGE_DIR };
  const drops: (() => Promise<void>)[] = [];
  const services: ServiceProcess[] = [];
  let ledger: ServiceProcess;
  /**
   * The same ledger's HTTP API (WORKERS=none, same database) with queries that give up after 2 s: while the test keeps
   * a read model's table locked, it answers what a ledger whose database cannot serve answers (503
   * DEPENDENCY_UNAVAILABLE), and once the lock is gone it serves again. The page's failure states are tested on that.
   */
  let impatient: ServiceProcess;
  let ledgerSchemaName: string;
  const locker = new Client({ connectionString: testDatabaseUrl() });
  let tally: TallyClient;
  let producer: Producer;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let token: string;
  const cycleEnd = new Date(Math.ceil((Date.now() + 20 * DAY) / DAY) * DAY + 15 * 3_600_000).toISOString(); // 15:00 UTC = 00:00 in Tokyo

  /** A POST to the ledger with the service key. */
  const post = (path: string, body: unknown) =>
    fetch(`${ledger.base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  /** A portal token of the page's account for the shortest time the ledger mints one, 60 s. */
  const mint = async () => ((await (await post(`/v1/accounts/${ACCOUNT}/portal-tokens`, { ttlSeconds: 60 })).json()) as { token: string; expiresAt: string });

  const api = async (path: string): Promise<any> => {
    const response = await fetch(`${ledger.base}${path}`, { headers: { authorization: `Bearer ${KEY}` } });
    if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
    return response.json();
  };
  const balanceIs = (available: string) => waitFor(async () => (await api(`/v1/accounts/${ACCOUNT}/balance`).catch(() => undefined))?.available === available, 30_000, 50);
  const testId = (p: Page, name: string) => p.getByTestId(name).first();
  /** Runs `during` with the read model's `table` locked against every reader (ACCESS EXCLUSIVE), then lets it go. */
  const whileLocked = async (table: 'balances' | 'ledger_transactions' | 'usage_records', during: () => Promise<void>) => {
    await locker.query('BEGIN');
    try {
      await locker.query(`LOCK TABLE "${ledgerSchemaName}".${table} IN ACCESS EXCLUSIVE MODE`);
      await during();
    } finally {
      await locker.query('ROLLBACK');
    }
  };
  /** Counts the requests a page makes whose path is `path` (observed, not answered for it). */
  const requestsTo = (p: Page, path: string) => {
    const seen = { count: 0 };
    p.on('request', (request) => {
      if (new URL(request.url()).pathname === path) seen.count += 1;
    });
    return seen;
  };
  const text = async (p: Page, name: string) => (await testId(p, name).textContent()) ?? '';
  let usageSeq = 0;
  const chat = (model: string, outputTokens: number, daysAgo = 0, feature: 'chat' | 'agent' = 'chat') => ({
    id: `u-${id}-${++usageSeq}`,
    accountId: ACCOUNT,
    occurredAt: new Date(Date.now() - daysAgo * DAY).toISOString(),
    feature,
    model,
    inputTokens: 0,
    outputTokens,
  });

  beforeAll(async () => {
    if (!existsSync(join(PAGE_DIR, 'index.html'))) {
      const build = spawnSync('npm', ['run', 'build:page'], { cwd: ROOT, encoding: 'utf8' });
      if (build.status !== 0) throw new Error(`npm run build:page failed: ${build.stdout}${build.stderr}`);
    }
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`);
    const kafka = new Kafka({ clientId: 'credits-page-e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
    await ensureTopics(kafka, Object.entries(env).filter(([name]) => name.endsWith('_TOPIC')).map(([, topic]) => topic), 3);
    producer = kafka.producer();
    await producer.connect();
    const ledgerSchema = await createTestSchema('page_ledger');
    const ingestSchema = await createTestSchema('page_ingest');
    drops.push(ledgerSchema.drop, ingestSchema.drop);
    ledgerSchemaName = ledgerSchema.schema;
    const [started, ingest, httpOnly] = await Promise.all([
      startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: ledgerSchema.schema }, 120_000),
      startServiceProcess('usage-ingest', { ...env, DATABASE_SCHEMA: ingestSchema.schema }, 120_000),
      startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: ledgerSchema.schema, WORKERS: 'none', PG_QUERY_TIMEOUT_MS: '2000' }, 120_000),
      locker.connect(),
    ]);
    ledger = started;
    impatient = httpOnly;
    services.push(ledger, ingest, impatient);
    tally = new TallyClient({ apiKey: KEY, urls: { ledger: ledger.base, usageIngest: ingest.base } });

    // The account: a plan cycle of 10 credits (what subscription-cycle would send), a promotional grant and a purchase.
    const periodStart = new Date(Date.now() - 10 * DAY).toISOString();
    await producer.send({
      topic: env.SUBSCRIPTION_EVENTS_TOPIC,
      messages: [{
        key: ACCOUNT,
        value: JSON.stringify({
          id: `cycle-${id}`, type: 'CycleStarted', version: 1, accountId: ACCOUNT, occurredAt: periodStart,
          data: { cycleId: `cycle-${id}`, planId: 'starter', periodStart, periodEnd: cycleEnd, allocation: '10', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
        }),
      }],
    });
    await balanceIs('10');
    expect((await post(`/v1/accounts/${ACCOUNT}/grants`, { reason: 'welcome credits', idempotencyKey: 'welcome', amount: '0.5' })).status).toBe(201);
    expect((await post(`/v1/accounts/${ACCOUNT}/purchases`, { paymentReference: 'pay-1', amount: '0.5' })).status).toBe(201);
    await balanceIs('11');

    // The product's backend mints the token the page gets (read + purchase, its checkout and upgrade pages, the account's zone).
    const minted = await post(`/v1/accounts/${ACCOUNT}/portal-tokens`, {
      ttlSeconds: 3600, purchase: true, checkoutUrl: 'https://product.example/checkout', upgradeUrl: 'https://product.example/upgrade', timeZone: 'Asia/Tokyo',
    });
    expect(minted.status).toBe(201);
    token = ((await minted.json()) as { token: string }).token;

    profile = mkdtempSync(join(tmpdir(), 'tally-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      locale: 'en-US',
      timezoneId: 'Europe/Paris',
      viewport: { width: 1200, height: 900 },
      acceptDownloads: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
    mkdirSync(SHOTS, { recursive: true });
  }, 240_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await producer?.disconnect().catch(() => undefined);
    await locker.end().catch(() => undefined);
    for (const service of services) await service.kill();
    for (const drop of drops) await drop();
  });

  it('serves the page at /portal/ without a key, with its CSP; the API behind it still wants a token', async () => {
    const html = await fetch(`${ledger.base}/portal/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await html.text()).toContain('<main id="app">');
    expect((await fetch(`${ledger.base}/portal/tally-elements.js`)).headers.get('access-control-allow-origin')).toBe('*');
    expect((await fetch(`${ledger.base}/v1/accounts/${ACCOUNT}/balance`)).status).toBe(401);
  });

  it('shows the balance, the allowance and its reset in the account zone, credits outside the allowance, and the links', async () => {
    await page.goto(`${ledger.base}/portal/?unit=credits#token=${token}`);
    await waitFor(async () => (await text(page, 'connection')) === 'Live', 20_000, 100);
    expect(micros(await text(page, 'available'))).toBe(11_000_000n);
    expect(micros(await text(page, 'purchased'))).toBe(500_000n);
    expect(micros(await text(page, 'promotional'))).toBe(500_000n);
    expect(await text(page, 'allowance-used')).toContain('0 of 10 credits used (0%)');
    expect(await text(page, 'reset-zone')).toContain('Asia/Tokyo');
    expect(await testId(page, 'reset').locator('time').getAttribute('datetime')).toBe(cycleEnd);
    expect(await text(page, 'reset')).toMatch(/12:00\s?AM/); // 15:00 UTC is midnight in Tokyo
    expect(await testId(page, 'buy').getAttribute('href')).toBe('https://product.example/checkout');
    expect(await testId(page, 'upgrade').getAttribute('href')).toBe('https://product.example/upgrade');
    // The token left the address bar (it would be copied with the URL).
    expect(page.url()).not.toContain('token=');
  }, 60_000);

  it('updates the balance within a second of the ledger, without a reload, when usage is reported through the client', async () => {
    await page.evaluate(() => ((globalThis as any).__sameDocument = true));
    const before = micros(await text(page, 'available'));
    await tally.reportUsage(chat('gpt-4o', 600)); // 0.006 credits
    const expected = before - 6_000n;
    let ledgerAt = 0;
    let pageAt = 0;
    await Promise.all([
      waitFor(async () => ((await api(`/v1/accounts/${ACCOUNT}/balance`)).available === '10.994' ? (ledgerAt = Date.now()) : undefined), 30_000, 25),
      waitFor(async () => (micros(await text(page, 'available')) === expected ? (pageAt = Date.now()) : undefined), 30_000, 25),
    ]);
    expect(pageAt - ledgerAt).toBeLessThan(1_000);
    expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
    // The history shows it with its cause, live too.
    await waitFor(async () => ((await testId(page, 'transactions').locator('tr[data-type="UsageDebited"]').count()) >= 1), 10_000, 100);
    expect(await testId(page, 'transactions').locator('tr[data-type="UsageDebited"]').first().textContent()).toContain('gpt-4o');
  }, 60_000);

  it('reloads usage and history while the balance keeps changing, not only once it stops (a busy account)', async () => {
    // An account of its own (the other tests count this one's usage), with a page of its own.
    const busyAccount = `acct-busy-${id}`;
    const periodStart = new Date(Date.now() - DAY).toISOString();
    await producer.send({
      topic: env.SUBSCRIPTION_EVENTS_TOPIC,
      messages: [{
        key: busyAccount,
        value: JSON.stringify({
          id: `cycle-busy-${id}`, type: 'CycleStarted', version: 1, accountId: busyAccount, occurredAt: periodStart,
          data: { cycleId: `cycle-busy-${id}`, planId: 'starter', periodStart, periodEnd: cycleEnd, allocation: '100', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
        }),
      }],
    });
    await waitFor(async () => (await api(`/v1/accounts/${busyAccount}/balance`).catch(() => undefined))?.available === '100', 30_000, 50);
    const minted = await post(`/v1/accounts/${busyAccount}/portal-tokens`, { ttlSeconds: 600 });
    expect(minted.status).toBe(201);
    const busy = await context.newPage();
    try {
      await busy.goto(`${ledger.base}/portal/#token=${((await minted.json()) as { token: string }).token}`);
      await waitFor(async () => (await text(busy, 'connection')) === 'Live', 20_000, 100);
      const requests = async () => Number(await text(busy, 'total-requests'));
      expect(await requests()).toBe(0);
      let reporting = true;
      let loopEnded = false;
      const load = (async () => {
        // A usage every 100 ms for up to 8 s, each sent without waiting for the one before (so however slowly the
        // machine answers): the balance changes more often than the page's 300 ms wait after a change.
        const sent: Promise<unknown>[] = [];
        for (let n = 0, started = Date.now(); reporting && Date.now() - started < 8_000; n++) {
          sent.push(tally.reportUsage({ ...chat('gpt-4o-mini', 1_000), id: `u-busy-${id}-${n}`, accountId: busyAccount }));
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        loopEnded = true;
        await Promise.all(sent);
      })();
      let refreshedWhileBusy = false;
      try {
        await waitFor(async () => (await requests()) > 0, 15_000, 50);
        refreshedWhileBusy = !loopEnded;
      } finally {
        reporting = false;
        await load;
      }
      expect(refreshedWhileBusy).toBe(true); // the usage panel reloaded while the balance was still changing
    } finally {
      await busy.close();
    }
  }, 60_000);

  it('filters usage by 7 days, 30 days and custom days of the account\'s zone, with the same totals as the usage API', async () => {
    // Usage over the past: today, 3 days ago (both in 7d), 12 days ago (30d only), 40 days ago (neither), and one at
    // 20:00 UTC 5 days ago, which is the next day in the account's zone (Tokyo, UTC+9): its bar is that day's.
    const lateEvening = new Date(`${new Date(Date.now() - 5 * DAY).toISOString().slice(0, 10)}T20:00:00Z`);
    await tally.reportUsageBatch([
      chat('gpt-4o-mini', 100_000, 0, 'agent'),
      chat('gpt-4o', 10_000, 3),
      chat('gpt-4o-mini', 200_000, 12),
      chat('gpt-4o', 20_000, 40),
      { ...chat('gpt-4o', 5_000), occurredAt: lateEvening.toISOString() },
      // Enough entries for a second page of history.
      ...Array.from({ length: 20 }, () => chat('gpt-4o-mini', 1_000, 1)),
    ]);
    await waitFor(async () => (await api(`/v1/accounts/${ACCOUNT}/usage?period=30d`)).totals.requests === 25, 30_000, 100);
    const totalsMatch = async (query: string) => {
      const summary = await api(`/v1/accounts/${ACCOUNT}/usage?${query}`);
      await waitFor(
        async () => Number(await text(page, 'total-requests')) === summary.totals.requests && micros(await text(page, 'total-credits')) === parseCredits(summary.totals.credits),
        15_000,
        100,
      );
      return summary;
    };

    await testId(page, 'range-7d').click();
    expect(await testId(page, 'range-7d').getAttribute('aria-pressed')).toBe('true');
    // Whole days in the account's zone, today included: seven bars (the rolling period=7d drew an eighth, partial one).
    const tokyoDay = (ms: number) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
    const tokyoDays = (from: number, count: number) => Array.from({ length: count }, (_, i) => new Date(Date.parse(`${tokyoDay(from)}T00:00:00Z`) + i * DAY).toISOString().slice(0, 10));
    const [weekFrom, afterToday] = [tokyoDays(Date.now() - 6 * DAY, 1)[0], tokyoDays(Date.now(), 2)[1]];
    const week = await totalsMatch(`from=${weekFrom}&to=${afterToday}&tz=Asia/Tokyo`);
    expect(week.totals.requests).toBe(24);
    const bars = page.getByTestId('usage-chart').locator('rect.bar');
    expect(await bars.evaluateAll((rects) => rects.map((rect) => rect.getAttribute('data-day')))).toEqual(tokyoDays(Date.now() - 6 * DAY, 7));
    // The late-evening usage is on Tokyo's next day, as the usage API counts it, not on its UTC day.
    const lateDay = tokyoDay(lateEvening.getTime());
    expect(lateDay).not.toBe(lateEvening.toISOString().slice(0, 10));
    expect(week.byDay.find((d: { day: string }) => d.day === lateDay)?.requests).toBe(1);
    expect(await page.getByTestId('usage-chart').locator(`rect.bar[data-day="${lateDay}"]:not(.empty)`).count()).toBe(1);
    // The table behind "Show as table" names the zone its days are in (it said "Day (UTC)" for Tokyo's days).
    const table = page.getByTestId('usage-by-day');
    expect(await table.locator('thead th').first().textContent()).toBe('Day (Asia/Tokyo)');
    expect(await table.locator('caption').textContent()).toContain('per day (Asia/Tokyo)');
    expect(await testId(page, 'by-model').textContent()).toContain('gpt-4o-mini');
    expect(await testId(page, 'by-feature').textContent()).toContain('Agent');

    await testId(page, 'range-30d').click();
    const month = await totalsMatch(`from=${tokyoDays(Date.now() - 29 * DAY, 1)[0]}&to=${afterToday}&tz=Asia/Tokyo`);
    expect(month.totals.requests).toBe(25);
    expect(await bars.count()).toBe(30);
    expect(await page.getByTestId('usage-chart').locator('rect.bar:not(.empty)').count()).toBe(month.byDay.length);

    // Custom: the Tokyo day of the usage 40 days ago alone (keyboard: fill the date inputs, Apply).
    const day = tokyoDay(Date.now() - 40 * DAY);
    await testId(page, 'range-custom').click();
    // The inputs start at the last 7 days of the account's zone.
    expect([await testId(page, 'custom-from').inputValue(), await testId(page, 'custom-to').inputValue()]).toEqual([weekFrom, tokyoDay(Date.now())]);
    await testId(page, 'custom-from').fill(day);
    await testId(page, 'custom-to').fill(day);
    await testId(page, 'custom-apply').press('Enter');
    const custom = await totalsMatch(`from=${day}&to=${tokyoDays(Date.parse(`${day}T12:00:00Z`), 2)[1]}&tz=Asia/Tokyo`);
    expect(custom.totals.requests).toBe(1);
    expect(custom.totals.credits).toBe('0.2');
  }, 90_000);

  it('exports the chosen range as CSV through the bearer, and the rows add up to the totals', async () => {
    await testId(page, 'range-30d').click();
    const month = await api(`/v1/accounts/${ACCOUNT}/usage?period=30d`);
    const [download] = await Promise.all([page.waitForEvent('download'), testId(page, 'export').click()]);
    expect(download.suggestedFilename()).toMatch(/^usage-acct-page-.+\.csv$/);
    const rows = parseCsv(readFileSync((await download.path()) as string, 'utf8'));
    const [header, ...data] = rows;
    expect(header).toEqual(['occurred_at', 'usage_id', 'feature', 'model', 'input_tokens', 'output_tokens', 'images', 'resolution', 'video_seconds', 'credits', 'rate_card_version']);
    expect(data).toHaveLength(month.totals.requests);
    const credits = header.indexOf('credits');
    expect(data.reduce((sum, row) => sum + parseCredits(row[credits]), 0n)).toBe(parseCredits(month.totals.credits));
  }, 60_000);

  it('pages the transaction history with the cursor, each entry with its cause', async () => {
    // Opened again from the product (a reload has no token: the page took it out of the address bar).
    await page.goto(`${ledger.base}/portal/#token=${token}`);
    await waitFor(async () => (await testId(page, 'transactions').locator('tr[data-type]').count()) === 20, 20_000, 100);
    await testId(page, 'older').click();
    const all = (await api(`/v1/accounts/${ACCOUNT}/transactions?limit=500`)).items.length;
    await waitFor(async () => (await testId(page, 'transactions').locator('tr[data-type]').count()) === Math.min(all, 40), 20_000, 100);
    const history = (await testId(page, 'transactions').textContent()) ?? '';
    for (const cause of ['Plan allowance', 'Monthly credits of plan starter', 'Purchase', 'Promotional grant', 'welcome', 'gpt-4o-mini', 'Agent']) {
      if (all > 40 && cause !== 'gpt-4o-mini' && cause !== 'Agent') continue;
      expect(history).toContain(cause);
    }
    await page.screenshot({ path: join(SHOTS, 'credits-page.png'), fullPage: true });
  }, 60_000);

  it('is accessible: no serious or critical WCAG 2 A/AA violation (axe-core, inside the shadow roots), and the range filters work from the keyboard', async () => {
    await page.goto(`${ledger.base}/portal/#token=${token}`);
    await waitFor(async () => (await testId(page, 'transactions').locator('tr[data-type]').count()) > 0, 20_000, 100);
    // Evaluated through the DevTools protocol: the page's CSP (script-src 'self') rightly refuses an inline <script>.
    await page.evaluate(axeSource);
    type Rule = { id: string; impact: string; nodes: unknown[] };
    const { violations, buttonsChecked } = await page.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run: (context: unknown, options: unknown) => Promise<{ violations: Rule[]; passes: Rule[] }> } }).axe;
      const result = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
      return {
        violations: result.violations.map(({ id, impact, nodes }) => ({ id, impact, nodes: nodes.length })),
        // The page's buttons live only in its shadow root: checked names on them prove axe looked inside it.
        buttonsChecked: result.passes.find(({ id }) => id === 'button-name')?.nodes.length ?? 0,
      };
    });
    expect(buttonsChecked).toBeGreaterThanOrEqual(3); // 7 days, 30 days, custom at least
    expect(violations.filter(({ impact }) => impact === 'serious' || impact === 'critical')).toEqual([]);

    // Keyboard only: focus the 7-day filter, press Enter, and it is the chosen range.
    await testId(page, 'range-7d').focus();
    await page.keyboard.press('Enter');
    await waitFor(async () => (await testId(page, 'range-7d').getAttribute('aria-pressed')) === 'true', 10_000, 50);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter'); // the next button, 30 days
    await waitFor(async () => (await testId(page, 'range-30d').getAttribute('aria-pressed')) === 'true', 10_000, 50);
  }, 60_000);

  it('the badge and the web component take attributes (unit, theme, accent) on a product page', async () => {
    const host = await context.newPage();
    // A product's own page on the ledger's origin (no CORS needed for this test), loading the elements bundle.
    await host.route(`${ledger.base}/product-page.html`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><html lang="en"><body style="margin:0;font-family:system-ui;background:#0f172a">
          <header style="display:flex;justify-content:space-between;align-items:center;padding:12px 20px;background:#111827;color:#fff">
            <strong>Product</strong><tally-balance-badge id="badge" unit="karma" theme="dark" accent="#f59e0b" href="#credits"></tally-balance-badge>
          </header>
          <tally-credits-page id="page" unit="karma" theme="dark" accent="#f59e0b" decimals="2"></tally-credits-page>
          <script type="module">
            import '/portal/tally-elements.js';
            for (const el of document.querySelectorAll('#badge, #page')) el.token = ${JSON.stringify(token)};
          </script></body></html>`,
      }),
    );
    await host.goto(`${ledger.base}/product-page.html`);
    const balance = await api(`/v1/accounts/${ACCOUNT}/balance`);
    const badgeShows = async () => {
      const shown = (await host.locator('#badge').getByTestId('badge-amount').textContent()) ?? '';
      return /\d/.test(shown) && micros(shown) === parseCredits(balance.available);
    };
    await waitFor(badgeShows, 20_000, 100);
    expect(await host.locator('#badge').getByTestId('badge').getAttribute('aria-label')).toContain('karma available');
    expect(await host.locator('#page h1').textContent()).toBe('Karma');
    expect(await host.locator('#page').getByTestId('buy').textContent()).toContain('Buy karma');
    await host.locator('#badge').screenshot({ path: join(SHOTS, 'balance-badge.png') });
    await host.screenshot({ path: join(SHOTS, 'credits-page-dark-karma.png') });
    await host.close();
  }, 60_000);

  // The ledger takes PORTAL_STREAMS_PER_ACCOUNT (5) live streams per account. A badge and the credits page in one
  // document each opened one, so three tabs of a product page wanted six and the sixth element stayed "reconnecting"
  // (429 TOO_MANY_STREAMS). The elements of a document showing one token now follow one stream.
  it('the badge and the credits page of one document follow one live stream: three tabs of a product page are all live', async () => {
    const tabs: Page[] = [];
    const streamsOf: { streams: number }[] = [];
    try {
      for (let tab = 0; tab < 3; tab += 1) {
        const host = await context.newPage();
        await host.route(`${ledger.base}/tab-page.html`, (route) =>
          route.fulfill({
            contentType: 'text/html',
            body: `<!doctype html><html lang="en"><body>
              <header><tally-balance-badge id="badge"></tally-balance-badge></header>
              <tally-credits-page id="page"></tally-credits-page>
              <script type="module">
                import '/portal/tally-elements.js';
                for (const el of document.querySelectorAll('#badge, #page')) el.token = ${JSON.stringify(token)};
              </script></body></html>`,
          }),
        );
        const opened = { streams: 0 };
        host.on('request', (request) => {
          if (request.url().includes('/balance/stream')) opened.streams += 1;
        });
        await host.goto(`${ledger.base}/tab-page.html`);
        tabs.push(host);
        streamsOf.push(opened);
      }
      for (const host of tabs) {
        await waitFor(async () => (await host.locator('#badge').getByTestId('badge').getAttribute('data-live')) === 'true', 20_000, 100);
        await waitFor(async () => ((await host.locator('#page').getByTestId('connection').textContent()) ?? '').trim() === 'Live', 20_000, 100);
      }
      expect(streamsOf.map(({ streams }) => streams)).toEqual([1, 1, 1]);
    } finally {
      for (const host of tabs) await host.close();
    }
  }, 90_000);

  it("a badge whose token changed while the first account's balance was still loading shows the second account, not the late answer", async () => {
    // Two accounts and a token for each (7 and 3 credits).
    const tokens: Record<string, string> = {};
    for (const [accountId, amount] of [['acct-page-first', '7'], ['acct-page-second', '3']]) {
      expect((await post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'funds', amount })).status).toBe(201);
      await waitFor(async () => (await api(`/v1/accounts/${accountId}/balance`).catch(() => undefined))?.available === amount, 30_000, 50);
      tokens[accountId] = ((await (await post(`/v1/accounts/${accountId}/portal-tokens`, { ttlSeconds: 600 })).json()) as { token: string }).token;
    }
    const host = await context.newPage();
    await host.route(`${ledger.base}/switch-page.html`, (route) =>
      route.fulfill({ contentType: 'text/html', body: `<!doctype html><html lang="en"><body><tally-balance-badge id="badge"></tally-balance-badge><script type="module">import '/portal/tally-elements.js';</script></body></html>` }),
    );
    // The first account's balance answer is held until the token has changed.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let asked!: () => void;
    const firstAsked = new Promise<void>((resolve) => (asked = resolve));
    await host.route(`${ledger.base}/v1/accounts/acct-page-first/balance`, async (route) => {
      asked();
      await held;
      await route.continue();
    });
    await host.goto(`${ledger.base}/switch-page.html`);
    await host.waitForFunction("customElements.get('tally-balance-badge') !== undefined");
    const setToken = (value: string) => host.locator('#badge').evaluate((badge: unknown, next: string) => { (badge as { token: string }).token = next; }, value);
    await setToken(tokens['acct-page-first']);
    await firstAsked;
    await setToken(tokens['acct-page-second']);
    const amount = () => host.locator('#badge').getByTestId('badge-amount').textContent();
    await waitFor(async () => /^3(\D|$)/.test(((await amount()) ?? '').trim()), 20_000, 50);

    // Then the first account's answer arrives, late: the badge still shows the second account.
    const lateAnswer = host.waitForResponse(`${ledger.base}/v1/accounts/acct-page-first/balance`);
    release();
    await lateAnswer;
    await host.evaluate(() => new Promise((resolve) => setTimeout(resolve, 50))); // the page's own handling of that answer
    expect(((await amount()) ?? '').trim()).toMatch(/^3(\D|$)/);
    await host.close();
  }, 60_000);

  // A portal token lasts 60 s to a day. When it expired the page stopped updating, and said so, and nothing told the
  // product in time; a new token set on the element blanked it to "Loading your credits…" and dropped the history
  // pages the reader had opened. Now the element says two minutes before (`tally-token-expiring`), and a new token
  // for the same account keeps what it shows while it reconnects.
  it('says its token is about to expire, and a new token for the same account keeps the balance and the history on screen', async () => {
    const mintedAt = Date.now();
    const first = await mint();
    const host = await context.newPage();
    await host.route(`${ledger.base}/expiring-page.html`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><html lang="en"><body><tally-credits-page id="page"></tally-credits-page><script type="module">
          window.expiring = [];
          document.addEventListener('tally-token-expiring', (event) => window.expiring.push(event.detail));
          import('/portal/tally-elements.js').then(() => { document.querySelector('#page').token = ${JSON.stringify(first.token)}; });
        </script></body></html>`,
      }),
    );
    try {
      await host.goto(`${ledger.base}/expiring-page.html`);
      const page = host.locator('#page');
      await waitFor(async () => ((await page.getByTestId('connection').textContent()) ?? '').trim() === 'Live', 20_000, 100);
      await page.locator('[data-testid="transactions"] tr[data-type]').first().waitFor({ timeout: 20_000 });
      // 60 s is shorter than the two minutes' notice: said halfway (not at once, or a product answering each notice with
      // a 60 s token would mint without end), naming the account and the instant.
      expect(await host.evaluate('window.expiring.length')).toBe(0);
      await waitFor(async () => (await host.evaluate('window.expiring.length')) === 1, 40_000, 100);
      expect(Date.now() - mintedAt).toBeGreaterThan(25_000); // its timer started when the token was set, after the mint
      const [said] = (await host.evaluate('window.expiring')) as { accountId: string; expiresAt: string }[];
      expect(said).toEqual({ accountId: ACCOUNT, expiresAt: new Date(first.expiresAt).toISOString().replace(/\.\d{3}Z$/, '.000Z') });

      const rows = await page.locator('[data-testid="transactions"] tr[data-type]').count();
      // Counts every moment the page shows its "Loading…" card instead of the balance.
      await host.evaluate(`(() => {
        const root = document.querySelector('#page').shadowRoot;
        window.blank = 0;
        new MutationObserver(() => { if (root.querySelector('[aria-busy="true"]')) window.blank += 1; }).observe(root, { childList: true, subtree: true, characterData: true });
      })()`);
      const second = await mint();
      await page.evaluate((element: unknown, next: string) => { (element as { token: string }).token = next; }, second.token);
      await waitFor(async () => ((await page.getByTestId('connection').textContent()) ?? '').trim() === 'Live', 20_000, 100);
      expect(await host.evaluate('window.blank')).toBe(0);
      expect(await page.locator('[data-testid="transactions"] tr[data-type]').count()).toBe(rows);
      expect(((await page.getByTestId('available').textContent()) ?? '').trim()).toMatch(/\d/);
    } finally {
      await host.close();
    }
  }, 100_000);

  it('in an iframe, tells the embedding page its token is about to expire and takes the next one by postMessage, without a reload', async () => {
    const first = await mint();
    const tallyOrigin = new URL(ledger.base).origin;
    const host = await context.newPage();
    // The product's page, on an origin of its own (a server of its own: Chromium lets only a page it fetched from a
    // local address frame a local one), embeds the credits page and keeps what it is told.
    const product = createServer((_, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><html lang="en"><body><iframe id="credits" title="Your credits"
        style="width:100%;height:900px;border:0" src="${ledger.base}/portal/#token=${first.token}"></iframe><script>
        window.said = [];
        window.addEventListener('message', (event) => { if (event.origin === ${JSON.stringify(tallyOrigin)}) window.said.push(event.data); });
      </script></body></html>`);
    });
    await new Promise<void>((resolve) => product.listen(0, '127.0.0.1', resolve));
    const productPage = `http://127.0.0.1:${(product.address() as AddressInfo).port}/credits.html`;
    try {
      await host.goto(productPage);
      const frame = host.frameLocator('#credits');
      await waitFor(async () => ((await frame.getByTestId('connection').textContent()) ?? '').trim() === 'Live', 20_000, 100);
      const said = async () => (await host.evaluate('window.said')) as { type: string; accountId: string; expiresAt: string }[];
      // A 60 s token: said halfway through, to the embedding page.
      await waitFor(async () => (await said()).length === 1, 40_000, 100);
      expect((await said())[0]).toEqual({ type: 'tally-token-expiring', accountId: ACCOUNT, expiresAt: new Date(first.expiresAt).toISOString() });

      // The product answers with a new token, here another account's (4 credits), which shows that the page took it.
      // Only its embedder is heard: the page checks a message's source (event.source === window.parent).
      const other = 'acct-page-iframe';
      expect((await post(`/v1/accounts/${other}/grants`, { reason: 'test grant', idempotencyKey: 'funds', amount: '4' })).status).toBe(201);
      await waitFor(async () => (await api(`/v1/accounts/${other}/balance`).catch(() => undefined))?.available === '4', 30_000, 50);
      const second = ((await (await post(`/v1/accounts/${other}/portal-tokens`, { ttlSeconds: 600 })).json()) as { token: string }).token;
      await host.evaluate(`document.querySelector('#credits').contentWindow.postMessage(${JSON.stringify({ type: 'tally-token', token: second })}, ${JSON.stringify(tallyOrigin)})`);
      // The page took it without a reload: the other account's balance, live.
      await waitFor(async () => micros(((await frame.getByTestId('available').textContent()) ?? '').trim()) === 4_000_000n, 20_000, 100);
      await waitFor(async () => ((await frame.getByTestId('connection').textContent()) ?? '').trim() === 'Live', 20_000, 100);
    } finally {
      await host.close();
      product.close();
    }
  }, 100_000);

  it('shows the low-credit banner when the balance crosses 20% of the allocation, then "Insufficient Credits" in overdraft', async () => {
    await page.goto(`${ledger.base}/portal/#token=${token}`);
    await waitFor(async () => (await text(page, 'connection')) === 'Live', 20_000, 100);
    expect(await page.getByTestId('low-credit').count()).toBe(0);
    const available = parseCredits((await api(`/v1/accounts/${ACCOUNT}/balance`)).available);
    /** Before a screenshot: the page's usage totals show the usage just reported (they refresh after the balance). */
    let requests = Number((await api(`/v1/accounts/${ACCOUNT}/usage?period=30d`)).totals.requests);
    const usageShown = async () => {
      requests += 1;
      await waitFor(async () => Number((await api(`/v1/accounts/${ACCOUNT}/usage?period=30d`)).totals.requests) === requests, 30_000, 100);
      await waitFor(async () => Number(await text(page, 'total-requests')) === requests, 15_000, 100);
    };
    // Down to 1.5 credits: below 20% (2) of the 10-credit allocation, above 5%.
    const spend = available - 1_500_000n;
    await tally.reportUsage(chat('gpt-4o', Number(spend / 10n))); // gpt-4o output: 10 credits per million tokens
    await testId(page, 'low-credit').waitFor({ timeout: 30_000 });
    expect(await testId(page, 'low-credit').getAttribute('data-alert')).toBe('low-20');
    expect(await text(page, 'low-credit')).toContain('below 20%');
    expect(await testId(page, 'allowance-bar').getAttribute('data-alert')).toBe('low-20');
    await usageShown();
    await page.screenshot({ path: join(SHOTS, 'credits-page-low-credit.png'), fullPage: false });

    // 2 credits more than there are: available 0, 0.5 owed.
    await tally.reportUsage(chat('gpt-4o', 200_000));
    await testId(page, 'insufficient').waitFor({ timeout: 30_000 });
    expect(await text(page, 'insufficient')).toContain('Insufficient Credits');
    expect(await testId(page, 'insufficient').getAttribute('role')).toBe('alert');
    expect(micros(await text(page, 'available'))).toBe(0n);
    expect(micros(await text(page, 'overdraft'))).toBe(500_000n);
    expect(await page.getByTestId('low-credit').count()).toBe(0);
    await usageShown();
    await page.screenshot({ path: join(SHOTS, 'credits-page-insufficient.png'), fullPage: false });
  }, 90_000);

  it('with decimals=0, a debt reads rounded up ("1 owed", not "0") and a small usage keeps its amount and sign', async () => {
    await page.goto(`${ledger.base}/portal/?decimals=0#token=${token}`);
    await waitFor(async () => (await text(page, 'connection')) === 'Live', 20_000, 100);
    await testId(page, 'insufficient').waitFor({ timeout: 30_000 });
    expect((await api(`/v1/accounts/${ACCOUNT}/balance`)).overdraft).toBe('0.5');
    expect(await text(page, 'overdraft')).toMatch(/^\s*1 owed/);
    expect(await text(page, 'insufficient')).toContain('You owe 1 credits');
    // The newest entry's balance after is the debt: rounded away from zero like it ("−1", as "1 owed"), never less.
    const newestBalanceAfter = ((await page.locator('[data-testid="transactions"] tr[data-type] td:nth-child(4)').first().textContent()) ?? '').trim();
    expect(newestBalanceAfter).toBe('−1');
    // The small usages reported earlier (0.0006 credits each): "−0.0006", not "0" (what cutting to 0 decimals showed).
    const amounts = (await page.locator('[data-testid="transactions"] tr[data-type="UsageDebited"] td:nth-child(3)').allTextContents()).map((amount) => amount.trim());
    expect(amounts.length).toBeGreaterThan(0);
    expect(amounts.filter((amount) => !/^−\d/.test(amount) || micros(amount) === 0n)).toEqual([]);
    expect(amounts).toContain('−0.0006');
  }, 60_000);

  it('an unlimited plan reads "Unlimited" on the page and the badge, not "0"; a badge whose stream is refused says it is not updated', async () => {
    const accountId = 'acct-page-unlimited';
    const periodStart = new Date(Date.now() - DAY).toISOString();
    await producer.send({
      topic: env.SUBSCRIPTION_EVENTS_TOPIC,
      messages: [{
        key: accountId,
        value: JSON.stringify({
          id: `cycle-unlimited-${id}`, type: 'CycleStarted', version: 1, accountId, occurredAt: periodStart,
          data: { cycleId: `cycle-unlimited-${id}`, planId: 'custom', periodStart, periodEnd: cycleEnd, allocation: '0', unlimited: true, thresholds: [], overdraftPolicy: 'carry' },
        }),
      }],
    });
    await waitFor(async () => (await api(`/v1/accounts/${accountId}/balance`).catch(() => undefined))?.unlimited === true, 30_000, 50);
    const minted = await fetch(`${ledger.base}/v1/accounts/${accountId}/portal-tokens`, {
      method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ ttlSeconds: 600 }),
    });
    const unlimitedToken = ((await minted.json()) as { token: string }).token;

    const other = await context.newPage();
    await other.goto(`${ledger.base}/portal/#token=${unlimitedToken}`);
    await waitFor(async () => (await text(other, 'connection')) === 'Live', 20_000, 100);
    expect((await text(other, 'available')).trim()).toMatch(/^Unlimited/);
    expect(await other.getByTestId('insufficient').count()).toBe(0);

    // The badge with a token that expires seconds after it read the balance (signed here with the ledger's secret, as
    // minting would, but for less than minting's 60 s): the ledger ends its stream at expiry (and would refuse it
    // again with 401 TOKEN_EXPIRED). The balance it read stays, marked not updated.
    const issuedAt = new Date();
    const expiring = await new PortalTokenCodec({ secret: PORTAL_SECRET }).sign({
      accountId, tokenId: `expiring-${id}`, issuedAt, expiresAt: new Date(issuedAt.getTime() + 15_000), rights: ['read'], links: {},
    });
    const streamsAsked = requestsTo(other, `/v1/accounts/${accountId}/balance/stream`);
    await other.route(`${ledger.base}/badge-page.html`, (route) =>
      route.fulfill({ contentType: 'text/html', body: `<!doctype html><html lang="en"><body><tally-balance-badge id="badge"></tally-balance-badge><script type="module">import '/portal/tally-elements.js'; document.querySelector('#badge').token = ${JSON.stringify(expiring)};</script></body></html>` }),
    );
    await other.goto(`${ledger.base}/badge-page.html`);
    const badge = other.locator('#badge');
    // The balance read while the token is valid (the amount shows "…" until then).
    await waitFor(async () => ((await badge.getByTestId('badge-amount').textContent())?.trim() === 'Unlimited' ? true : undefined), 15_000, 50);
    // The stream ends at expiry ("reconnecting"); asked again, the ledger refuses it (401 TOKEN_EXPIRED): not updated.
    await waitFor(async () => ((await badge.getByTestId('badge').getAttribute('aria-label'))?.endsWith('not updated') ? true : undefined), 40_000, 100);
    expect(await badge.getByTestId('badge-stale').count()).toBeGreaterThan(0);
    expect(((await badge.getByTestId('badge-amount').textContent()) ?? '').trim()).toBe('Unlimited');
    expect(streamsAsked.count).toBeGreaterThanOrEqual(2);
    expect(await badge.getByTestId('badge').getAttribute('data-live')).toBe('false');
    expect(await badge.getByTestId('badge').getAttribute('aria-label')).toBe('Unlimited credits available, not updated');
    await other.close();
  }, 90_000);

  it('a history load answered 503 shows the failure, not "No transactions yet", and is tried again by itself (an idle account)', async () => {
    const other = await context.newPage();
    const asked = requestsTo(other, `/v1/accounts/${ACCOUNT}/transactions`);
    const history = other.getByTestId('history');
    await whileLocked('ledger_transactions', async () => {
      await other.goto(`${impatient.base}/portal/#token=${token}`);
      await history.locator('.problem').waitFor({ timeout: 20_000 });
      expect(await other.getByTestId('transactions').textContent()).not.toContain('No transactions yet');
    });
    // No balance change comes: the page must try again by itself, then show the entries and no error.
    await other.locator('[data-testid="transactions"] tr[data-type]').first().waitFor({ timeout: 30_000 });
    expect(asked.count).toBeGreaterThanOrEqual(2);
    expect(await history.locator('.problem').count()).toBe(0);
    await other.close();
  }, 60_000);

  it("a range whose usage fails to load shows the failure, never the previous range's figures under its name", async () => {
    const other = await context.newPage();
    await other.goto(`${impatient.base}/portal/#token=${token}`);
    await testId(other, 'usage-totals').waitFor({ timeout: 20_000 });
    const thirtyDaysFrom = await testId(other, 'usage-totals').getAttribute('data-from');
    await whileLocked('usage_records', async () => {
      await testId(other, 'range-7d').click();
      await other.getByTestId('usage').locator('.problem').waitFor({ timeout: 20_000 });
      const shown = await other.getByTestId('usage-totals').count();
      const from = shown > 0 ? await testId(other, 'usage-totals').getAttribute('data-from') : null;
      expect({ shown, from }).toEqual({ shown: 0, from: null });
    });
    expect(thirtyDaysFrom).not.toBeNull();
    await other.close();
  }, 60_000);

  it('a CSV export that fails says so where it was asked for, and can be asked again', async () => {
    const other = await context.newPage();
    await other.goto(`${impatient.base}/portal/#token=${token}`);
    await testId(other, 'usage-totals').waitFor({ timeout: 20_000 });
    const problem = other.getByTestId('export-problem');
    await whileLocked('usage_records', async () => {
      await testId(other, 'export').click();
      await problem.waitFor({ state: 'visible', timeout: 20_000 });
      expect(await problem.textContent()).toContain('The export failed');
      expect(await testId(other, 'export').isEnabled()).toBe(true);
    });
    await other.close();
  }, 60_000);

  it('a first load answered 503 (the ledger restarting) is tried again, and the page goes live by itself', async () => {
    const other = await context.newPage();
    const asked = requestsTo(other, `/v1/accounts/${ACCOUNT}/balance`);
    await whileLocked('balances', async () => {
      await other.goto(`${impatient.base}/portal/#token=${token}`);
      await other.getByTestId('problem').waitFor({ timeout: 20_000 });
    });
    await waitFor(async () => (await text(other, 'connection')) === 'Live', 30_000, 100);
    expect(asked.count).toBeGreaterThanOrEqual(2);
    expect(await other.getByTestId('problem').count()).toBe(0);
    await other.close();
  }, 40_000);

  it('refuses a token that is not valid, saying so on the page', async () => {
    const other = await context.newPage();
    await other.goto(`${ledger.base}/portal/#token=${token.slice(0, -4)}AAAA`);
    await other.getByTestId('problem').waitFor({ timeout: 20_000 });
    expect(await other.getByTestId('problem').textContent()).toContain('expired or is not valid');
    await other.close();
  }, 30_000);
});
