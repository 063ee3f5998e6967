import fc from 'fast-check';
import type { ClassConstructor } from 'class-transformer';
import { Envelope } from '../envelope.contract';
import { MESSAGE_REGISTRIES } from '../message-registry.contract';
import { classOf, type MessageVersions } from '../message-versions.contract';

/**
 * Valid payloads of every message class on every topic, and random changes to them: what the compiled validation
 * paths (compiled-validator.parser.ts, json-to-instance.parser.ts) are held to class-validator and class-transformer on.
 */
const T = '2026-11-21T10:00:00.000Z';
const snapshot = {
  available: '10', allowance: '5', promotional: '3', purchased: '2', held: '0', overdraft: '0', allocation: '100', usedThisCycle: '90',
  cycleId: 'c-1', cycleEnd: T, planId: 'pro', unlimited: false,
};
const share = { bucketId: 'allowance:c-1', kind: 'allowance', amount: '1.5' };
const pricing = { rateCardVersion: '2026-01', lines: [{ model: 'gpt-4o', feature: 'chat', amount: '1.5', inputTokens: 10, outputTokens: 5 }] };
const debit = {
  usageId: 'u-1', amount: '1.5', perBucket: [share], overdraft: '0', pricing, feature: 'chat', models: ['gpt-4o'], occurredAt: T, debitedAt: T,
  holdId: 'h-1', metadata: { project: 'p' },
};

/** One valid payload per message type and version on every topic (the seeds the mutations start from). */
const SEEDS: Record<string, object[]> = {
  UsageRecorded: [
    { feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5, holdId: 'h-1', metadata: { a: 'b' } },
    { feature: 'image', model: 'gpt-image-1', images: 2, resolution: '1024x1024' },
    { feature: 'video', model: 'sora', videoSeconds: 8 },
    { feature: 'council', responses: [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 2 }, { model: 'o3', inputTokens: 3, outputTokens: 4 }] },
  ],
  CycleStarted: [
    { cycleId: 'c-1', planId: 'pro', periodStart: T, periodEnd: T, allocation: '100', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
  ],
  PlanChanged: [{ changeId: 'pc-1', planId: 'pro', unlimited: true, thresholds: [20], overdraftPolicy: 'write-off' }],
  AccountOpened: [{ accountId: 'acc-1', openedAt: T }],
  CreditsGranted: [{
    grantId: 'g-1', bucketId: 'b-1', kind: 'promotional', amount: '5', expiresAt: T, source: 'api', paymentReference: 'p-1', reason: 'promo', grantedAt: T,
    overdraftSettled: '1',
  }],
  UsageDebited: [debit, { ...debit, holdId: undefined, metadata: {} }],
  CreditsExpired: [{ bucketId: 'b-1', kind: 'allowance', amount: '1', reason: 'cycle-reset', expiredAt: T }],
  OverdraftIncurred: [{ usageId: 'u-1', amount: '1', total: '2' }],
  OverdraftWrittenOff: [{ usageId: 'u-1', amount: '1' }],
  OverdraftSettled: [{ grantId: 'g-1', amount: '1', remaining: '0' }],
  LowCreditThresholdCrossed: [{ thresholdPercent: 20, cycleId: 'c-1', available: '19.5', allocation: '100' }],
  CreditsDepleted: [{ cycleId: 'c-1', usageId: 'u-1' }, {}],
  HoldPlaced: [{ holdId: 'h-1', amount: '1', perBucket: [share, { ...share, kind: 'purchased' }], expiresAt: T }],
  HoldSettled: [{ holdId: 'h-1', usageId: 'u-1', heldAmount: '2', settledAmount: '1', releasedAmount: '1' }],
  HoldReleased: [{ holdId: 'h-1', amount: '1', reason: 'expired' }],
  UsageRefunded: [{
    refundId: 'r-1', usageId: 'u-1', amount: '1', requestedAmount: '1', restored: [share], forfeited: [], reissued: { bucketId: 'r-1', amount: '0' },
    overdraftReduced: '0', uncharged: '0', perModel: [{ model: 'gpt-4o', amount: '1' }], restoreExpired: false, reason: 'wrong charge', refundedAt: T,
  }],
  GrantVoided: [{ voidId: 'v-1', grantId: 'g-1', bucketId: 'b-1', kind: 'promotional', amount: '1', reason: 'mistake', voidedAt: T }],
};

const ENVELOPES = [
  { id: 'e-1', type: 'UsageDebited', version: 2, accountId: 'acc-1', occurredAt: T, data: {}, streamVersion: 3, balanceAfter: snapshot, actor: 'svc' },
  { id: 'e-2', type: 'UsageRecorded', version: 1, accountId: 'acc-1', occurredAt: T, data: { anything: 1 } },
];

/** Every payload class of every topic, each with its seeds (a class without a seed fails the first test). */
export const CONTRACT_CLASSES: { name: string; cls: ClassConstructor<object>; seeds: object[] }[] = [
  { name: 'Envelope', cls: Envelope, seeds: ENVELOPES },
  ...Object.values(MESSAGE_REGISTRIES).flatMap((registry) =>
    Object.entries(registry as Record<string, MessageVersions<object>>).flatMap(([type, message]) =>
      [message.version, ...message.older.map((older) => older.version)].map((version) => ({
        name: `${type} v${version}`, cls: classOf(message, version) as ClassConstructor<object>, seeds: SEEDS[type] ?? [],
      })),
    ),
  ),
];

/** Values that sit on the rules' edges: types, bounds, patterns, lengths, dates, amounts. */
export const edgeValue = fc.oneof(
  fc.constantFrom<unknown>(
    null, true, false, 0, -1, 1, 1.5, 100, 101, 2_147_483_647, 2_147_483_648, Number.MAX_SAFE_INTEGER, '', ' ', '0', '-1', '1.0000001', '1.000001',
    '999999999999999999999', 'chat', 'council', 'image', 'video', 'allowance', 'expired', 'carry', 'x'.repeat(65), 'x'.repeat(129), 'x'.repeat(201),
    'has space', '2026-11-21', '2026-11-21T10:00:00Z', '2026-02-30T10:00:00Z', 'not-a-date', '1024x1024', [], [1], ['a'], [{}], [[]], {},
    { model: 'm', inputTokens: 1, outputTokens: 1 }, share, [share], { a: 1 }, { a: 'b' },
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Names an added property may take: unknown ones, and the ones JSON allows but class-transformer treats specially. */
const ADDED_NAMES = ['extra', 'Extra', 'data', 'toString', 'valueOf', 'hasOwnProperty', 'constructor', '__proto__'];

/** One change: a value set, a field removed, or a field added, at the node `pick` selects. */
export interface Change {
  pick: number;
  kind: 'set' | 'delete' | 'add';
  value: unknown;
  name: string;
}

export const change: fc.Arbitrary<Change> = fc.record({
  pick: fc.nat(),
  kind: fc.constantFrom<Change['kind']>('set', 'set', 'delete', 'add'),
  value: edgeValue,
  name: fc.constantFrom(...ADDED_NAMES),
});

/**
 * `root` with one change, as JSON.parse would have built it (an added `__proto__` is an own property, as in
 * `JSON.parse('{"__proto__": 1}')`). The node is picked by index among the root and every object or array inside.
 */
export function applyChange(root: unknown, { pick, kind, value, name }: Change): unknown {
  const copy = JSON.parse(JSON.stringify(root)) as unknown;
  const slots: { parent: Record<string, unknown> | unknown[] | null; key: string | number; node: unknown }[] = [{ parent: null, key: '', node: copy }];
  const walk = (node: unknown) => {
    if (typeof node !== 'object' || node === null) return;
    for (const [key, child] of Object.entries(node)) {
      slots.push({ parent: node as Record<string, unknown>, key: Array.isArray(node) ? Number(key) : key, node: child });
      walk(child);
    }
  };
  walk(copy);
  const slot = slots[pick % slots.length];
  if (kind === 'add') {
    if (typeof slot.node !== 'object' || slot.node === null || Array.isArray(slot.node)) return copy;
    Object.defineProperty(slot.node, name, { value, enumerable: true, writable: true, configurable: true });
    return copy;
  }
  if (slot.parent === null) return kind === 'delete' ? copy : value;
  if (kind === 'delete' && !Array.isArray(slot.parent)) delete slot.parent[slot.key as string];
  else (slot.parent as Record<string, unknown>)[slot.key as string] = value;
  return copy;
}

/** A seeded message class with its seed changed one to three times. */
export const changedMessage = fc
  .tuple(fc.constantFrom(...CONTRACT_CLASSES.flatMap(({ name, cls, seeds }) => seeds.map((seed) => ({ name, cls, seed })))), fc.array(change, { minLength: 1, maxLength: 3 }))
  .map(([{ name, cls, seed }, changes]) => ({ name, cls, plain: changes.reduce<unknown>(applyChange, seed) }));
