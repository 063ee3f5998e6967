import type { INestApplication } from '@nestjs/common';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * A pack purchase whose answer was lost is retried (the same payment reference and packId) after the catalogue
 * changed: the pack repriced, or withdrawn. The purchase was credited: the retry is that purchase, answered 200 as a
 * repeat with what was credited, not 409 IDEMPOTENCY_CONFLICT (a new price is other content) or 400 UNKNOWN_PACK.
 * Two ledgers in turn on one schema, each booted with its catalogue (PLANS_PATH); real HTTP and PostgreSQL.
 */
describe('a pack purchase retried after the catalogue changed', () => {
  const { env, topics } = ledgerTestSettings();
  const dir = mkdtempSync(join(tmpdir(), 'tally-catalogue-'));
  const plans = readFileSync('config/plans.yaml', 'utf8');
  const catalogue = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const repriced = catalogue('repriced.yaml', plans.replace('{ id: pack-1000, credits: "1000", price: "10" }', '{ id: pack-1000, credits: "1200", price: "10" }'));
  const withdrawn = catalogue('withdrawn.yaml', plans.replace(/^ {2}- \{ id: pack-1000,.*\n/m, ''));
  let schema: string;
  let drop: () => Promise<void>;
  let app: INestApplication | undefined;
  let api: ReturnType<typeof json>;

  const boot = async (plansPath?: string) => {
    await app?.close();
    const started = await startLedger({ ...env, WORKERS: 'none', LOG_LEVEL: 'silent', ...(plansPath && { PLANS_PATH: plansPath }) }, schema);
    app = started.app;
    api = json(started.base);
  };

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_purchase_catalogue'));
    await createTopics(topics);
    expect(readFileSync(repriced, 'utf8')).toContain('{ id: pack-1000, credits: "1200"');
    expect(readFileSync(withdrawn, 'utf8')).not.toContain('pack-1000,');
  });

  afterAll(async () => {
    await app?.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the purchase credited, repriced or withdrawn since, and credits nothing again', async () => {
    await boot();
    const purchase = { paymentReference: 'pay-before-change', packId: 'pack-1000' };
    expect(await api.post('/v1/accounts/acct-catalogue/purchases', purchase)).toMatchObject({ status: 201, body: { amount: '1000', duplicate: false } });

    for (const plansPath of [repriced, withdrawn]) {
      await boot(plansPath);
      const retry = await api.post('/v1/accounts/acct-catalogue/purchases', purchase);
      expect(retry).toMatchObject({ status: 200, body: { grantId: 'purchase:pay-before-change', amount: '1000', duplicate: true, balance: { available: '1000' } } });
    }
  });

  it('still refuses another pack under that payment reference, and a withdrawn pack for a new one', async () => {
    await boot(withdrawn);
    expect(await api.post('/v1/accounts/acct-catalogue/purchases', { paymentReference: 'pay-before-change', packId: 'pack-5000' })).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
    expect(await api.post('/v1/accounts/acct-catalogue/purchases', { paymentReference: 'pay-after-change', packId: 'pack-1000' })).toMatchObject({ status: 400, body: { code: 'UNKNOWN_PACK' } });
    expect(await api.post('/v1/accounts/acct-catalogue/purchases', { paymentReference: 'pay-before-change', amount: '1000' })).toMatchObject({ status: 409, body: { code: 'IDEMPOTENCY_CONFLICT' } });
  });
});
