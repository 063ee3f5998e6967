import fc from 'fast-check';
import { Topics, parseMessage, serializeEnvelope } from '@tally/contracts';
import { recordedEventAsJson, type RecordedEvent } from '@tally/event-store';
import { balanceOf, balanceView, evolve, initialState } from '@tally/ledger-domain';
import { ACCOUNT, accountHistory, play } from '@tally/ledger-domain/testing';
import { asLedgerEnvelope, netBalance, transactionRow } from '@tally/ledger-read-models';
import { PUBLISH_METADATA_KEYS, accountStreamId, decodeEvent, ledgerEnvelopeJson, snapshotOf, toLedgerEnvelope, toNewEvent } from '@tally/ledger-events';

/**
 * Every event the decider can emit reaches the projection and the notification service intact: stored as the
 * ledger stores it, published as the relay publishes it, parsed with the contract every consumer uses, and
 * decoded back, it equals the original. A field the decider emits but the contract does not declare is refused by
 * the contract's forbidNonWhitelisted, so this fails for it.
 */
describe('ledger events on the wire', () => {
  // Also the transaction history: the projection maps each decoded event to its row.
  it("every event of any command history survives store → the relay's text → contract parse → decode unchanged", () => {
    const seenTypes = new Set<string>();
    fc.assert(
      fc.property(accountHistory, (ops) => {
        const { steps } = play(ops);
        let state = initialState;
        let version = 0;
        let historySum = 0n;
        for (const { command, now, events } of steps) {
          events.forEach((event, index) => {
            state = evolve(state, event);
            version += 1;
            seenTypes.add(event.type);
            const stored = toNewEvent(ACCOUNT, commandKey(command), index, event, snapshotOf(balanceOf(state)));
            const recorded: RecordedEvent = {
              ...stored,
              streamId: accountStreamId(ACCOUNT),
              version,
              metadata: stored.metadata ?? {},
              recordedAt: now,
              checkpoint: String(version),
            };
            // The event store keeps JSON: what comes back is what JSON can carry.
            const reloaded = { ...recorded, data: JSON.parse(JSON.stringify(recorded.data)) as Record<string, unknown> };
            // Published as the relay publishes it: the envelope spliced from the stored texts, parsing to the envelope object.
            const published = ledgerEnvelopeJson(recordedEventAsJson(reloaded, PUBLISH_METADATA_KEYS));
            expect(JSON.parse(published)).toEqual(JSON.parse(serializeEnvelope(toLedgerEnvelope(reloaded)).toString()));
            const { envelope } = parseMessage(Topics.ledgerEvents, published);

            expect(plain(decodeEvent({ type: envelope.type, data: envelope.data as Record<string, unknown> }))).toEqual(plain(event));
            expect(envelope.streamVersion).toBe(version);
            expect(plain(envelope.balanceAfter)).toEqual(recorded.metadata.balanceAfter);

            // The transaction history adds up: each row's balance is the sum of the entries so far.
            const row = transactionRow(asLedgerEnvelope(envelope));
            if (row) {
              historySum += BigInt(row.amount ?? '0');
              expect({ version, type: row.type, sum: historySum }).toEqual({ version, type: row.type, sum: BigInt(row.balanceAfter) });
            }
          });
          // ...and after every command, the entries sum to the account's net balance.
          if (events.length > 0) expect(historySum).toBe(netBalance(snapshotOf(balanceView(state, now))));
        }
      }),
      { numRuns: 400 },
    );
    // The histories reach the events that carry optional fields (the ones a contract can forget).
    expect([...seenTypes].sort()).toEqual(
      expect.arrayContaining(['CreditsGranted', 'OverdraftSettled', 'OverdraftIncurred', 'UsageDebited', 'HoldSettled', 'HoldReleased', 'LowCreditThresholdCrossed', 'PlanChanged', 'UsageRefunded', 'GrantVoided']),
    );
  });
});

function commandKey(command: { type: string } & Record<string, unknown>): string {
  return `${command.type}:${String(command.refundId ?? command.voidId ?? command.grantId ?? command.usageId ?? command.holdId ?? command.cycleId ?? command.changeId ?? 'sweep')}`;
}

/** Class instances and plain objects compare by their own enumerable fields. */
function plain<T>(value: T): unknown {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
}

