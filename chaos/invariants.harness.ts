import { Topics } from '@tally/contracts';
import { readStoredOffsets } from '@tally/kafka';
import { balanceOf, evolve, initialState, type AccountCommand, type AccountEvent, type AccountState, type BalanceView } from '@tally/ledger-domain';
import { modelBalance, modelInitialState, modelStep, type ModelState } from '@tally/ledger-domain/testing';
import { parseCredits } from '@tally/money';
import { decodeEvent } from '@tally/ledger-events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { API_KEY, CONSUMER_GROUPS, HOLD_SETTLE_GRACE_SECONDS, ROOT, type ChaosSystem } from './chaos.harness';
import type { InjectedFault } from './fault.schedule';
import type { UsageBody, Workload } from './workload.fixtures';
import type { Answer, WorkloadClient } from './workload.client';

export interface InvariantResult {
  name: string;
  checked: number;
  failures: number;
  /** The first few failures, said plainly (what was expected, what was found). */
  examples: string[];
  /** What the check found besides pass/fail (e.g. about never-acknowledged requests). */
  notes: string[];
}

class Invariant implements InvariantResult {
  checked = 0;
  failures = 0;
  examples: string[] = [];
  notes: string[] = [];

  constructor(readonly name: string) {}

  check(ok: boolean, failure: () => string): void {
    this.checked += 1;
    if (ok) return;
    this.failures += 1;
    if (this.examples.length < 8) this.examples.push(failure());
  }
}

/** One stored event of an account stream, decoded. */
interface StoredEvent {
  version: number;
  event: AccountEvent;
  commandKey: string;
  recordedAt: Date;
}

const plain = (value: unknown): string =>
  JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => x.localeCompare(y))) : v));
const micros = (credits: unknown): bigint => parseCredits(String(credits));

/** Consumer lag per group: the topic's end minus the offset the service stored with its effects, summed over partitions. */
export async function consumerLag(system: ChaosSystem): Promise<Map<string, bigint>> {
  const admin = system.kafkaClient('chaos-lag').admin();
  await admin.connect();
  try {
    const ends = new Map<string, { partition: number; high: string }[]>();
    for (const topic of new Set(CONSUMER_GROUPS.map((g) => g.topic))) ends.set(topic, await admin.fetchTopicOffsets(topic));
    const lag = new Map<string, bigint>();
    for (const group of CONSUMER_GROUPS) {
      const stored = await readStoredOffsets(system.pool, group.schema, group.group, group.topic).catch(() => new Map<number, bigint>());
      let behind = 0n;
      for (const { partition, high } of ends.get(group.topic) ?? []) {
        const last = BigInt(high) - 1n;
        const done = stored.get(partition) ?? -1n;
        if (last > done) behind += last - done;
      }
      lag.set(group.name, behind);
    }
    return lag;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Every message of a topic, from the beginning to its current end. */
export async function readTopic(system: ChaosSystem, topic: string): Promise<{ key: string; value: string; headers: Record<string, string> }[]> {
  const kafka = system.kafkaClient(`chaos-read-${topic}`);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const wanted = ends.filter((p) => BigInt(p.high) > BigInt(p.low));
  if (wanted.length === 0) return [];
  const messages: { key: string; value: string; headers: Record<string, string> }[] = [];
  const consumer = kafka.consumer({ groupId: `chaos-reader-${topic}-${Date.now()}` });
  const remaining = new Set(wanted.map((p) => p.partition));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`reading ${topic} timed out`)), 60_000);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        messages.push({
          key: message.key?.toString() ?? '',
          value: message.value?.toString() ?? '',
          headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString() ?? ''])),
        });
        const end = ends.find((p) => p.partition === partition);
        if (end && BigInt(message.offset) >= BigInt(end.high) - 1n) remaining.delete(partition);
        if (remaining.size === 0) {
          clearTimeout(timer);
          done();
        }
      },
    });
  });
  await consumer.disconnect();
  return messages;
}

export interface CheckInput {
  system: ChaosSystem;
  workload: Workload;
  driver: WorkloadClient;
  faults: InjectedFault[];
  /** Per consumer group: ms from the last fault's end (and from the moment the load was sent) until its lag was 0 for good (0 if before). */
  lagRecovery: Map<string, { afterLastFaultMs: number; afterLoadMs: number } | undefined>;
  lagBoundMs: number;
}

export async function checkInvariants(input: CheckInput): Promise<InvariantResult[]> {
  return [
    await chargedOnce(input),
    ...(await balances(input)),
    await alerts(input),
    await deadLetters(input),
    lagBackToZero(input),
    fiveHundreds(input),
    intended(input),
    relayedPastForeignTransactions(input),
    noExitButFaults(input),
    await acceptedCommandsStored(input),
    await pricedByTheCard(input),
  ];
}

/** A model's chat prices in one version of config/rate-card.yaml, in micro-credits per million tokens. */
export interface CardVersion {
  effectiveFrom: number;
  chat: Map<string, { input: bigint; output: bigint }>;
}

/** config/rate-card.yaml (what the ledger is given), read here with the yaml package alone, not libs/pricing. */
export function rateCardVersions(): CardVersion[] {
  const card = parseYaml(readFileSync(join(ROOT, 'config/rate-card.yaml'), 'utf8')) as {
    versions: { effectiveFrom: string; models: Record<string, { chat?: { inputPerMillion: string; outputPerMillion: string } }> }[];
  };
  return card.versions
    .map((version) => ({
      effectiveFrom: Date.parse(version.effectiveFrom),
      chat: new Map(
        Object.entries(version.models).flatMap(([model, prices]) =>
          prices.chat ? [[model, { input: micros(prices.chat.inputPerMillion), output: micros(prices.chat.outputPerMillion) }] as const] : [],
        ),
      ),
    }))
    .sort((a, b) => a.effectiveFrom - b.effectiveFrom);
}

/**
 * What the card says a chat usage costs, in micro-credits: the version in effect when it occurred, then input ×
 * inputPerMillion + output × outputPerMillion over a million tokens, rounded up once to a whole micro-credit (README:
 * "Pricing rounds once per usage event, up"). Undefined for a model that version does not price.
 */
export function cardPrice(versions: readonly CardVersion[], usage: Pick<UsageBody, 'model' | 'inputTokens' | 'outputTokens'>, occurredAt: string): bigint | undefined {
  const at = Date.parse(occurredAt);
  const version = versions.filter((candidate) => candidate.effectiveFrom <= at).at(-1);
  const prices = version?.chat.get(usage.model);
  if (!prices) return undefined;
  const exact = BigInt(usage.inputTokens) * prices.input + BigInt(usage.outputTokens) * prices.output;
  return (exact + 999_999n) / 1_000_000n;
}

/**
 * 12. Every usage the ledger charged cost what config/rate-card.yaml says, priced here on its own from what the
 * workload sent (its tokens and model) and when it occurred. Invariants 1–3 take the amounts the ledger stored as
 * given; this one holds them to the card, so a pricing defect (a rounding, a version chosen wrong) cannot pass.
 */
async function pricedByTheCard({ system, workload }: CheckInput): Promise<InvariantResult> {
  const result = new Invariant('12. every charged usage cost what the rate card says (priced here on its own)');
  const sent = new Map<string, UsageBody>();
  for (const step of workload.steps) {
    if (step.kind === 'usage-http' || step.kind === 'usage-kafka') for (const body of step.events) sent.set(body.id, body);
    if (step.kind === 'hold') sent.set(step.settleWith.id, step.settleWith);
  }
  const versions = rateCardVersions();
  const { rows } = await system.pool.query<{ usage_id: string; amount: string; occurred_at: string }>(
    `select data->>'usageId' as usage_id, data->>'amount' as amount, data->>'occurredAt' as occurred_at from ledger.events where type = 'UsageDebited'`,
  );
  for (const row of rows) {
    const body = sent.get(row.usage_id);
    // A usage never sent is invariant 1's to report.
    if (!body) continue;
    const expected = cardPrice(versions, body, row.occurred_at);
    result.check(expected !== undefined && micros(row.amount) === expected, () =>
      `usage ${row.usage_id} (${body.inputTokens} input and ${body.outputTokens} output tokens of ${body.model} at ${row.occurred_at}) charged ${row.amount}, the card says ${expected === undefined ? 'nothing (no price)' : `${expected} µcr`}`,
    );
  }
  result.notes.push(`${result.checked} charged usages priced against config/rate-card.yaml`);
  return result;
}

/** A pack's credits as config/plans.yaml (the catalogue the ledger is given) says, read here on its own. */
function packCredits(packId: string): bigint {
  const catalogue = readFileSync(join(ROOT, 'config/plans.yaml'), 'utf8');
  const line = new RegExp(`id: ${packId.replace(/[^\w-]/g, '')}, credits: "([0-9.]+)"`).exec(catalogue);
  if (!line) throw new Error(`pack ${packId} not in config/plans.yaml`);
  return micros(line[1]);
}

/**
 * 11. Every grant and purchase the ledger acknowledged (2xx) is in its account's stream exactly once with the amount
 * the workload sent (a pack: its credits in the catalogue), and every hold it placed exactly once with the amount
 * asked. Invariants 1–3 look at usage and at the store's own consistency; this one holds the store to the client's
 * acknowledgements of everything else that moves money.
 */
async function acceptedCommandsStored({ system, driver }: CheckInput): Promise<InvariantResult> {
  const result = new Invariant('11. every acknowledged grant and purchase, and every placed hold, stored once with the amount sent');
  const { rows } = await system.pool.query<{ type: string; id: string; amount: string; settled: string | null }>(
    `select type, coalesce(data->>'grantId', data->>'holdId') as id, data->>'amount' as amount, data->>'overdraftSettled' as settled
       from ledger.events where type in ('CreditsGranted', 'HoldPlaced')`,
  );
  const stored = new Map<string, bigint[]>();
  for (const row of rows) {
    const amount = micros(row.amount) + micros(row.settled ?? '0');
    stored.set(`${row.type}|${row.id}`, [...(stored.get(`${row.type}|${row.id}`) ?? []), amount]);
  }
  for (const [key, step] of driver.accepted) {
    const [where, expected] =
      step.kind === 'grant' ? [`CreditsGranted|grant:${key}`, micros(step.amount)]
        : step.kind === 'purchase' ? [`CreditsGranted|purchase:${key}`, step.packId ? packCredits(step.packId) : micros(step.amount)]
          : [`HoldPlaced|${key}`, micros(step.amount)];
    const found = stored.get(where) ?? [];
    result.check(found.length === 1 && found[0] === expected, () => `${step.kind} ${key} of ${step.accountId}: sent ${expected} µ, stored ${found.length === 0 ? 'nowhere' : found.join(' and ')}`);
  }
  result.notes.push(`${driver.holds.unlimited} holds answered on an unlimited plan (nothing reserved, none stored: not looked for)`);
  return result;
}

/**
 * 10. No service exited but those the run killed. One that died by itself (an unhandled error under a fault, say)
 * would otherwise be started again by the next fault of its kind and its outage taken for the fault's.
 */
export function noExitButFaults({ system }: { system: Pick<ChaosSystem, 'services'> }): InvariantResult {
  const result = new Invariant('10. no service exited but by a fault the run injected');
  for (const service of system.services.values()) {
    if (service.unexpectedExits.length === 0) result.check(true, () => '');
    for (const exit of service.unexpectedExits) {
      result.check(false, () => `${new Date(exit.at).toISOString()} ${service.name} (pid ${exit.pid ?? '?'}) exited by itself (${exit.exit}); see its log`);
    }
  }
  return result;
}

/** One account as the four places that hold it saw it at one stream version. */
interface AccountSnapshot {
  events: StoredEvent[];
  balance: { status: number; body: Record<string, unknown> };
  history: { sum: bigint; rows: number };
  row: Record<string, string | number | boolean | null> | undefined;
  /** Reads that never agreed on one version (the check then reports what it saw last). */
  unsettled: boolean;
}

async function readStream(system: ChaosSystem, accountId: string): Promise<StoredEvent[]> {
  const { rows } = await system.pool.query<{ version: number; type: string; data: Record<string, unknown>; metadata: Record<string, unknown>; recorded_at: Date }>(
    `select version, type, data, metadata, recorded_at from ledger.events where stream_id = $1 order by version`,
    [`account-${accountId}`],
  );
  return rows.map((row) => ({ version: row.version, event: decodeEvent(row), commandKey: String(row.metadata.commandKey ?? ''), recordedAt: row.recorded_at }));
}

/**
 * The account's stream, its balance and history (HTTP) and its read-model row, read at one stream version. The
 * ledger keeps deciding while the checks run (the expiry worker expires grants and holds that come due), so four
 * reads made one after another can straddle an append: the first scale runs compared a stream read before an
 * expiry with a read model and history read after it, and reported a divergence that was only the reads' order.
 * The reads are made again until the stream's version is the same before and after them and the balance and the
 * read model are at that version; a real divergence (a read model that never reaches the store's version, or
 * reaches it with other figures) still fails the checks after the retries.
 */
async function accountSnapshot(system: ChaosSystem, accountId: string): Promise<AccountSnapshot> {
  const versionOf = async () =>
    Number((await system.pool.query<{ version: number }>(`select coalesce(max(version), 0)::int as version from ledger.events where stream_id = $1`, [`account-${accountId}`])).rows[0].version);
  for (let attempt = 1; ; attempt++) {
    const events = await readStream(system, accountId);
    const balance = await get(system, `/v1/accounts/${accountId}/balance`);
    const history = await historyOf(system, accountId);
    const row = (await system.pool.query<Record<string, string | number | boolean | null>>(`select * from ledger.balances where account_id = $1`, [accountId])).rows[0];
    const version = events.at(-1)?.version ?? 0;
    const settled = (await versionOf()) === version && Number(balance.body.asOfVersion) === version && Number(row?.stream_version) === version;
    if (settled || attempt === SNAPSHOT_ATTEMPTS) return { events, balance, history, row, unsettled: !settled };
    await new Promise((done) => setTimeout(done, 250));
  }
}
const SNAPSHOT_ATTEMPTS = 40;

/** 1. Every acknowledged usage id charged exactly once. */
async function chargedOnce({ system, driver }: CheckInput): Promise<InvariantResult> {
  const result = new Invariant('1. every acknowledged usage id charged exactly once');
  const { rows } = await system.pool.query<{ id: string; n: number }>(`select data->>'usageId' as id, count(*)::int as n from ledger.events where type = 'UsageDebited' group by 1`);
  const charged = new Map(rows.map((r) => [r.id, r.n]));
  const { acked, unsure } = driver.usageIds();
  for (const id of acked) result.check(charged.get(id) === 1, () => `usage ${id} acknowledged, charged ${charged.get(id) ?? 0} times`);
  for (const [id, n] of charged) if (!acked.has(id)) result.check(unsure.has(id) && n === 1, () => `usage ${id} charged ${n} times but ${unsure.has(id) ? 'never acknowledged' : 'never sent'}`);
  result.notes.push(`${acked.size} usage ids acknowledged, ${charged.size} charged`);
  if (unsure.size > 0) {
    const found = [...unsure].filter((id) => charged.has(id)).length;
    result.notes.push(`${unsure.size} never acknowledged: ${found} of them charged once, ${unsure.size - found} not charged`);
  }
  return result;
}

/** The account's money from its events: what came in, what went out, what is held. */
function ledgerTotals(events: StoredEvent[]) {
  let granted = 0n;
  let charged = 0n;
  let held = 0n;
  for (const { event } of events) {
    switch (event.type) {
      case 'CreditsGranted':
        granted += event.data.amount + (event.data.overdraftSettled ?? 0n);
        break;
      case 'UsageDebited':
        charged += event.data.perBucket.reduce((sum, share) => sum + share.amount, 0n) + event.data.overdraft;
        break;
      case 'CreditsExpired':
        charged += event.data.amount;
        break;
      case 'OverdraftWrittenOff':
        charged -= event.data.amount;
        break;
      case 'HoldPlaced':
        held += event.data.amount;
        break;
      case 'HoldReleased':
        held -= event.data.amount;
        break;
      case 'HoldSettled':
        held -= event.data.heldAmount;
        break;
      default:
        break;
    }
  }
  return { granted, charged, held };
}

async function get(system: ChaosSystem, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${system.service('ledger').base}${path}`, { headers: { authorization: `Bearer ${API_KEY}` }, signal: AbortSignal.timeout(30_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function historyOf(system: ChaosSystem, accountId: string): Promise<{ sum: bigint; rows: number }> {
  let cursor: string | null = null;
  let sum = 0n;
  let rows = 0;
  do {
    const query: string = `limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await get(system, `/v1/accounts/${accountId}/transactions?${query}`);
    if (page.status !== 200) throw new Error(`transactions of ${accountId}: ${page.status} ${JSON.stringify(page.body)}`);
    const items = page.body.items as { amount: string | null }[];
    for (const item of items) if (item.amount !== null) sum += micros(item.amount);
    rows += items.length;
    cursor = page.body.nextCursor as string | null;
  } while (cursor);
  return { sum, rows };
}

const VIEW_FIELDS = ['available', 'held', 'overdraft', 'allocation', 'usedThisCycle', 'cycleId', 'planId', 'unlimited'] as const;
function viewOf(view: BalanceView) {
  return { ...Object.fromEntries(VIEW_FIELDS.map((f) => [f, view[f]])), ...view.byKind };
}

/** 2 and 3: the account's money adds up three ways, and its balance is the same three ways. */
async function balances({ system, workload }: CheckInput): Promise<InvariantResult[]> {
  const sums = new Invariant('2. per account: granted − charged − held == available − overdraft == Σ history');
  const folds = new Invariant('3. balance read model == fold of the event stream == reference model');
  const ttls = new Map(workload.steps.flatMap((s) => (s.kind === 'hold' ? [[s.key, s.ttlSeconds] as const] : [])));
  const types = new Map<string, number>();
  let steps = 0;
  let unsettled = 0;
  for (const account of workload.accounts) {
    const { events, balance, history, row, unsettled: moving } = await accountSnapshot(system, account.accountId);
    if (events.length === 0) continue;
    if (moving) unsettled += 1;
    for (const { event } of events) types.set(event.type, (types.get(event.type) ?? 0) + 1);
    const { granted, charged, held } = ledgerTotals(events);
    const net = micros(balance.body.available) - micros(balance.body.overdraft);
    const sum = history.sum;
    sums.check(granted - charged - held === net && net === sum, () =>
      `${account.accountId}: granted ${granted} − charged ${charged} − held ${held} = ${granted - charged - held} µcr, available − overdraft = ${net}, history sums to ${sum} (stream at v${events.length}, balance as of v${String(balance.body.asOfVersion)})`);

    // The fold of the stream with the decider's evolve, and the reference model fed the accepted commands.
    const state = events.reduce<AccountState>((s, e) => evolve(s, e.event), initialState);
    const folded = viewOf(balanceOf(state));
    const projected = row && {
      available: BigInt(row.available as string), held: BigInt(row.held as string), overdraft: BigInt(row.overdraft as string), allocation: BigInt(row.allocation as string),
      usedThisCycle: BigInt(row.used_this_cycle as string), cycleId: row.cycle_id, planId: row.plan_id, unlimited: row.unlimited,
      allowance: BigInt(row.allowance as string), promotional: BigInt(row.promotional as string), purchased: BigInt(row.purchased as string),
    };
    const replay = replayOnModel(account.accountId, events, ttls);
    steps += replay.steps;
    const modelled = replay.state ? viewOf(modelBalance(replay.state)) : undefined;
    folds.check(
      projected !== undefined && plain(projected) === plain(folded) && Number(row?.stream_version) === events.length && replay.failure === undefined && plain(modelled) === plain(folded),
      () => replay.failure ?? `${account.accountId}: read model ${plain(projected)} at version ${row?.stream_version}, fold ${plain(folded)} at ${events.length}, model ${plain(modelled)}`,
    );
  }
  folds.notes.push(`${steps} accepted commands replayed on the reference model`);
  if (unsettled > 0) folds.notes.push(`${unsettled} accounts whose stream, balance and read model never agreed on one version in ${SNAPSHOT_ATTEMPTS} reads`);
  folds.notes.push(`events in the store: ${[...types].sort(([a], [b]) => a.localeCompare(b)).map(([type, n]) => `${type} ${n}`).join(', ')}`);
  return [sums, folds];
}

/**
 * The commands the ledger accepted, rebuilt from the stream (events of one decision share its command key), fed to
 * the reference model in the ledger's order. A decision's instant is in its events when they carry one
 * (openedAt, grantedAt, debitedAt, expiredAt); otherwise it lies between the transaction's start (recorded_at) and
 * the commit, so the model is asked at each candidate instant (recorded_at, a hold's request, a hold that expired
 * on the way) and must produce exactly the stored events at one of them.
 */
function replayOnModel(accountId: string, events: StoredEvent[], ttls: Map<string, number>): { state?: ModelState; steps: number; failure?: string } {
  let model = modelInitialState;
  let steps = 0;
  for (let i = 0; i < events.length;) {
    const key = events[i].commandKey;
    let j = i;
    while (j < events.length && events[j].commandKey === key) j += 1;
    const group = events.slice(i, j);
    const command = commandOf(accountId, key, group.map((g) => g.event));
    if (!command) return { steps, failure: `${accountId} v${events[i].version}: no command to rebuild from ${key} (${group.map((g) => g.event.type).join(', ')})` };
    const candidates = new Set<number>();
    for (const { event } of group) {
      const data = event.data as Record<string, unknown>;
      for (const field of ['openedAt', 'grantedAt', 'debitedAt', 'expiredAt']) if (typeof data[field] === 'string') candidates.add(Date.parse(data[field] as string));
      if (event.type === 'HoldPlaced' && ttls.has(event.data.holdId)) {
        candidates.add(Date.parse(event.data.expiresAt) - ((ttls.get(event.data.holdId) ?? 0) + HOLD_SETTLE_GRACE_SECONDS) * 1000);
      }
    }
    const recordedAt = group[0].recordedAt.getTime();
    candidates.add(recordedAt);
    // A decision whose events carry no instant (a plan change, a cycle, a release) but expire a hold on the way was
    // taken at or after that hold's expiry, which can be later than the row's recorded_at (the transaction's start:
    // the consumers open it before deciding): the earliest instant consistent with the record is tried too.
    for (const { event } of group) {
      if (event.type !== 'HoldReleased' || event.data.reason !== 'expired') continue;
      const hold = model.holds.find((h) => h.id === event.data.holdId);
      if (hold) candidates.add(Math.max(recordedAt, Date.parse(hold.expiresAt)));
    }
    const stored = plain(group.map((g) => g.event));
    let matched: ModelState | undefined;
    let tried = '';
    for (const at of candidates) {
      const result = modelStep(model, command, new Date(at));
      if (result.ok && plain(result.events) === stored) {
        matched = result.state;
        break;
      }
      tried = result.ok ? plain(result.events) : `refused ${result.code}`;
    }
    if (!matched) return { steps, failure: `${accountId} v${events[i].version} ${key}: the ledger recorded ${stored}; the model decided ${tried}` };
    model = matched;
    steps += 1;
    i = j;
  }
  return { state: model, steps };
}

function commandOf(accountId: string, key: string, events: AccountEvent[]): AccountCommand | undefined {
  const find = <T extends AccountEvent['type']>(type: T) => events.find((e) => e.type === type) as Extract<AccountEvent, { type: T }> | undefined;
  if (key.startsWith('usage:')) {
    const d = find('UsageDebited')?.data;
    return d && { type: 'RecordUsage', accountId, usageId: d.usageId, amount: d.amount, occurredAt: d.occurredAt, feature: d.feature, models: d.models, pricing: d.pricing, ...(d.holdId ? { holdId: d.holdId } : {}), ...(d.metadata ? { metadata: d.metadata } : {}) };
  }
  if (key.startsWith('cycle:')) {
    const d = find('CycleStarted')?.data;
    return d && { type: 'StartCycle', accountId, ...d };
  }
  if (key.startsWith('plan:')) {
    const d = find('PlanChanged')?.data;
    return d && { type: 'ChangePlan', accountId, ...d };
  }
  if (key.startsWith('grant:') || key.startsWith('purchase:')) {
    const d = events.find((e): e is Extract<AccountEvent, { type: 'CreditsGranted' }> => e.type === 'CreditsGranted' && e.data.grantId === key)?.data;
    return d && {
      type: 'GrantCredits', accountId, grantId: d.grantId, kind: d.kind, amount: d.amount + (d.overdraftSettled ?? 0n), source: d.source,
      ...(d.expiresAt ? { expiresAt: d.expiresAt } : {}), ...(d.paymentReference ? { paymentReference: d.paymentReference } : {}),
      ...(d.reason !== undefined ? { reason: d.reason } : {}),
    };
  }
  if (key.startsWith('hold:')) {
    const d = find('HoldPlaced')?.data;
    return d && { type: 'PlaceHold', accountId, holdId: d.holdId, amount: d.amount, expiresAt: d.expiresAt };
  }
  if (key.startsWith('release:')) return { type: 'ReleaseHold', accountId, holdId: key.slice('release:'.length), reason: 'released' };
  if (key.startsWith('expire-credits:')) return { type: 'ExpireCredits', accountId, bucketId: key.slice('expire-credits:'.length) };
  if (key.startsWith('expire:')) return { type: 'ReleaseHold', accountId, holdId: key.slice('expire:'.length), reason: 'expired' };
  return undefined;
}

/**
 * 4. Every alert the ledger's events call for delivered exactly once per channel (after dropping resends of one id), or
 * cancelled unsent because the next cycle started before it could go (a low-credit alert of a renewed balance).
 */
async function alerts({ system, faults }: CheckInput): Promise<InvariantResult> {
  const result = new Invariant('4. every 20% / 5% / depletion alert delivered exactly once per channel');
  const { rows } = await system.pool.query<{ notification_id: string; event_id: string; channel: string; state: string; last_error: string | null }>(
    `select notification_id, event_id, channel, state, last_error from notification.deliveries`,
  );
  const { rows: ids } = await system.pool.query<{ stream_id: string; version: number; event_id: string }>(
    `select stream_id, version, event_id::text from ledger.events where type in ('LowCreditThresholdCrossed', 'CreditsDepleted')`,
  );
  // Per notification id, when each copy arrived.
  const emails = new Map<string, number[]>();
  for (const mail of system.smtp.messages) {
    const id = (mail.messageId ?? '').replace(/^<|@tally\.notification>$/g, '');
    emails.set(id, [...(emails.get(id) ?? []), mail.receivedAt]);
  }
  const hooks = new Map<string, number[]>();
  for (const hook of system.receiver.received) {
    const id = String(hook.headers['webhook-id'] ?? '');
    hooks.set(id, [...(hooks.get(id) ?? []), hook.receivedAt]);
  }
  const byEvent = new Map<string, typeof rows>();
  for (const row of rows) byEvent.set(`${row.event_id}|${row.channel}`, [...(byEvent.get(`${row.event_id}|${row.channel}`) ?? []), row]);
  let resent = 0;
  let superseded = 0;
  for (const { event_id: eventId, stream_id: streamId, version } of ids) {
    for (const [channel, received] of [['email', emails], ['webhook', hooks]] as const) {
      const deliveries = byEvent.get(`${eventId}|${channel}`) ?? [];
      const copies = deliveries.map((d) => received.get(d.notification_id) ?? []);
      const times = copies.map((sent) => sent.length);
      resent += times.reduce((a, b) => a + Math.max(0, b - 1), 0);
      for (const [i, sent] of copies.entries()) {
        if (sent.length > 1) result.check(resendExcused(sent, faults), () => `${streamId} v${version} ${channel} ${deliveries[i].notification_id}: sent ${sent.length} times, no fault of notification around it`);
      }
      const renewedAway = deliveries.length === 1 && times[0] === 0 && deliveries[0].state === 'cancelled' && (deliveries[0].last_error ?? '').startsWith('superseded');
      if (renewedAway) superseded += 1;
      result.check(deliveries.length === 1 && (times[0] >= 1 || renewedAway), () =>
        `${streamId} v${version} (${eventId}) ${channel}: ${deliveries.length} deliveries (${deliveries.map((d) => d.state).join(', ')}), received ${times.join('+') || 0} times`);
    }
  }
  // Expected: the deliveries of alert events only (a delivery row for any other event is itself a stray message).
  const alertEvents = new Set(ids.map(({ event_id: eventId }) => eventId));
  const expected = new Set(rows.filter((r) => alertEvents.has(r.event_id)).map((r) => r.notification_id));
  const stray = [...emails.keys(), ...hooks.keys()].filter((id) => !expected.has(id));
  result.check(stray.length === 0, () => `${stray.length} messages received for no delivery the ledger's events called for: ${stray.slice(0, 3).join(', ')}`);
  result.notes.push(`${ids.length} alert events; ${system.smtp.messages.length} emails and ${system.receiver.received.length} webhooks received; ${resent} resends of an already-received id (each inside a fault of notification or of everything: the documented at-least-once window, dropped by id); ${superseded} cancelled unsent as superseded by the next cycle`);
  return result;
}

/**
 * Delivery is at least once: a copy is sent again only when the sender died (or lost its database) between sending
 * and recording it. So a resend must come with a fault of notification or of everything, from up to a minute before
 * the first copy (a send under way when it began; the claim's lease is shorter) to the last.
 */
export function resendExcused(sentAt: number[], faults: Pick<InjectedFault, 'window' | 'foreign'>[]): boolean {
  const first = Math.min(...sentAt);
  const last = Math.max(...sentAt);
  return disrupting(faults).some(({ window }) => (window.scope === 'all' || window.scope === 'notification') && window.from <= last && window.until >= first - 60_000);
}

/** 5. Nothing dead-lettered but the poison messages the workload sent on purpose (each at least once). */
async function deadLetters({ system, workload }: CheckInput): Promise<InvariantResult> {
  const result = new Invariant('5. nothing dead-lettered but the poison messages sent on purpose');
  const poison = new Set(workload.poisonKeys);
  const seen = new Set<string>();
  for (const topic of [Topics.usageDeadLetter, Topics.subscriptionDeadLetter, Topics.ledgerDeadLetter]) {
    for (const message of await readTopic(system, topic)) {
      const expected = topic === Topics.usageDeadLetter && poison.has(message.key);
      if (expected) seen.add(message.key);
      result.check(expected, () => `${topic}: key ${message.key}, reason ${message.headers['x-dead-letter-reason']} ${message.headers['x-dead-letter-details'] ?? ''}: ${message.value.slice(0, 200)}`);
    }
  }
  for (const key of poison) result.check(seen.has(key), () => `poison message ${key} was not dead-lettered`);
  return result;
}

/**
 * 6. Every consumer group's lag back to 0 for good within the stated bound of whichever came later: the last fault's
 * end or the moment the load was sent (the resends of unanswered requests that follow get no extra time).
 */
export function lagBackToZero({ lagRecovery, lagBoundMs }: Pick<CheckInput, 'lagRecovery' | 'lagBoundMs'>): InvariantResult {
  const result = new Invariant(`6. every consumer's lag back to 0 within ${lagBoundMs / 1000} s of the last fault and the load's end`);
  for (const group of CONSUMER_GROUPS) {
    const recovery = lagRecovery.get(group.name);
    const after = recovery && Math.min(recovery.afterLastFaultMs, recovery.afterLoadMs);
    result.check(after !== undefined && after <= lagBoundMs, () =>
      `${group.name}: ${recovery ? `${(recovery.afterLastFaultMs / 1000).toFixed(1)} s after the last fault, ${(recovery.afterLoadMs / 1000).toFixed(1)} s after the load was sent` : 'never back to 0'}`);
  }
  return result;
}

/** Codes a 503 may carry inside a fault's window: the documented answers while a dependency is down or an account is being caught up. */
const DOCUMENTED_503 = ['DEPENDENCY_UNAVAILABLE', 'KAFKA_UNAVAILABLE', 'ACCOUNT_BUSY'];

/**
 * How long after a cycle's end its renewal may still be pending with every service up: the chaos run's
 * subscription-cycle schedules every 1 s and relays its outbox every 0.1 s (chaos.harness.ts), so a minute is many
 * rounds of both.
 */
const RENEWAL_GAP_MS = 60_000;

/**
 * A 503 an authorization may carry outside a fault's window: a state of the account, not of the system. Between a
 * cycle's end and its renewal the ledger cannot yet say whether the account can pay (README, `POST
 * /v1/accounts/:id/authorizations`). The cycle it names must have ended when it answered, and the request must come
 * within RENEWAL_GAP_MS of that end. A fault of any service that begins while the renewal is due (an outage of
 * subscription-cycle or of the broker makes the gap longer) moves that limit to the fault's end plus the consumers'
 * lag bound (`lagBoundMs`, at least RENEWAL_GAP_MS), and so on through the faults.
 */
function isRenewalPending(answer: Answer, faults: InjectedFault[], lagBoundMs: number): boolean {
  if (answer.code !== 'CYCLE_RENEWAL_PENDING' || answer.service !== 'ledger' || answer.method !== 'POST' || !answer.path.endsWith('/authorizations')) return false;
  const cycleEnd = Date.parse(answer.cycleEnd ?? '');
  if (!(cycleEnd <= answer.answeredAt)) return false; // none named, or not ended yet
  let dueBy = cycleEnd + RENEWAL_GAP_MS;
  for (const { window } of [...faults].sort((a, b) => a.window.from - b.window.from)) {
    if (window.from <= dueBy) dueBy = Math.max(dueBy, window.until + Math.max(RENEWAL_GAP_MS, lagBoundMs));
  }
  return answer.at <= dueBy;
}

/** Whether a 5xx is a documented 503: Retry-After, a stable code, and (for the fault codes) inside a fault's window. */
function isDocumented503(answer: Answer, faults: InjectedFault[], lagBoundMs: number): boolean {
  if (answer.status !== 503 || answer.retryAfter === null) return false;
  return isRenewalPending(answer, faults, lagBoundMs) || (DOCUMENTED_503.includes(answer.code ?? '') && inWindow(answer, faults));
}

/** The faults that made something unavailable: a transaction open in another database makes nothing unavailable. */
const disrupting = <F extends Pick<InjectedFault, 'foreign'>>(faults: F[]): F[] => faults.filter((fault) => fault.foreign === undefined);

/** Whether the request was in flight at some moment of a fault's window (sent before it and answered during it counts). */
export function inWindow(answer: Answer, faults: InjectedFault[]): boolean {
  return disrupting(faults).some(({ window }) => (window.scope === 'all' || window.scope === answer.service) && answer.answeredAt >= window.from && answer.at <= window.until);
}

/** 7. No 5xx but a documented 503 (Retry-After, stable code) inside a fault's window. */
export function fiveHundreds({ driver, faults, lagBoundMs }: { driver: Pick<WorkloadClient, 'answers'>; faults: InjectedFault[]; lagBoundMs: number }): InvariantResult {
  const result = new Invariant('7. no 5xx but 503 + Retry-After inside a fault\'s documented window, and no request unanswered outside one');
  const slow: Answer[] = [];
  for (const answer of driver.answers) {
    if (answer.status === 0 && answer.timedOut && !inWindow(answer, faults)) {
      // The client gave up waiting: on two busy cores the harness's own event loop (it also runs the SMTP sink and the
      // webhook receiver) can be the slow one, so a timeout is reported, not failed.
      slow.push(answer);
      continue;
    }
    if (answer.status === 0) {
      // No answer at all (refused, reset): only a fault of that service, or of everything, excuses it.
      result.check(inWindow(answer, faults), () => `${new Date(answer.at).toISOString()} ${answer.service} ${answer.method} ${answer.path}: no answer, outside a fault window`);
      continue;
    }
    if (answer.status < 500) continue;
    result.check(isDocumented503(answer, faults, lagBoundMs), () => `${new Date(answer.at).toISOString()} ${answer.service} ${answer.method} ${answer.path}: ${answer.status} ${answer.code ?? ''} (Retry-After ${answer.retryAfter ?? 'none'}), ${inWindow(answer, faults) ? 'in' : 'outside'} a fault window`);
  }
  if (slow.length > 0) result.notes.push(`${slow.length} requests timed out outside a fault window (not failed: the client's own wait), first ${slow.slice(0, 3).map((a) => `${new Date(a.at).toISOString()} ${a.service} ${a.method} ${a.path}`).join('; ')}`);
  if (result.checked === 0 && slow.length === 0) result.notes.push('no 5xx and no unanswered request at all');
  return result;
}

/**
 * 9. A transaction open in another database of the cluster does not stop the ledger's relay: an event committed after
 * it began is published while it is still open (the relay used to wait for the oldest transaction of the whole cluster).
 */
function relayedPastForeignTransactions({ faults }: CheckInput): InvariantResult {
  const result = new Invariant('9. the relay kept publishing while a transaction was open in another database');
  for (const { label, foreign, startedAt } of faults) {
    if (!foreign) continue;
    if (foreign.published === undefined) {
      result.notes.push(`${label}: no event committed while it was open (not checked)`);
      continue;
    }
    result.check(foreign.published, () => `${new Date(startedAt).toISOString()} ${label}: the relay stayed at ${foreign.relayed}, before ${foreign.event}, committed after it began`);
  }
  if (result.checked === 0) result.notes.push('no such fault checked in this run');
  return result;
}

/** 8. Every request the workload meant to succeed was accepted (a 4xx there is a defect or a workload bug). */
function intended({ driver }: CheckInput): InvariantResult {
  const result = new Invariant('8. no request refused that should have been accepted');
  result.checked = driver.acks.acked.size;
  result.failures = driver.refusals.length;
  result.examples = driver.refusals.slice(0, 8).map((r) => `${r.step}: ${r.status} ${r.code ?? ''}`);
  return result;
}
