import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import {
  START,
  headAt,
  type Checkpoint,
  type EventStore,
  type NewEvent,
  type RecordedEvent,
  type RecordedEventJson,
  type SqlTransaction,
  type UnitOfWork,
} from '../event-store.port';
import { EventStoreError, EventStoreErrorCode, isEventStoreError } from '../event-store.errors';

export interface EventStoreContractFactory {
  /** Called once per suite; the store may hold events of other tests (streams are unique per test). */
  create(): Promise<EventStore>;
  /** Called after the suite, after store.close(). */
  dispose?(): Promise<void>;
  /** PostgreSQL: true. EventStoreDB: false (stream-by-stream; retried safely thanks to idempotent ids). */
  atomicAppendMany: boolean;
  /**
   * How to open a transaction the store can join (`joinTransaction`), for stores that offer one; undefined for
   * stores that must not offer it (EventStoreDB, PostgreSQL with `transactional: false`), which the suite checks.
   */
  openTransaction?: () => Promise<OpenTransaction>;
}

/** A transaction the test opened (PostgreSQL: a pool client after BEGIN); commit/rollback also release it. */
export interface OpenTransaction {
  tx: SqlTransaction;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * The behaviour every EventStore adapter must show. Each test uses fresh stream ids, so the suite can run
 * against a store shared with other tests; readAll/subscribe assertions look only at the test's own streams.
 */
export function describeEventStoreContract(name: string, factory: EventStoreContractFactory): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;

    beforeAll(async () => {
      store = await factory.create();
    });

    afterAll(async () => {
      await store?.close();
      await factory.dispose?.();
    });

    it('appends events and reads them back in version order, with ranges', async () => {
      const streamId = stream();
      const [a, b, c] = [event('Opened', { n: 1 }, { by: 'test' }), event('Credited', { n: 2 }), event('Debited', { n: 3 })];

      const result = await store.append({ streamId, expectedVersion: 'no_stream', events: [a, b, c] });

      expect(result).toMatchObject({ streamId, nextExpectedVersion: 3, duplicate: false });
      const read = await store.readStream(streamId);
      expect(read.map((e) => [e.id, e.version, e.type, e.data, e.metadata])).toEqual([
        [a.id, 1, 'Opened', { n: 1 }, { by: 'test' }],
        [b.id, 2, 'Credited', { n: 2 }, {}],
        [c.id, 3, 'Debited', { n: 3 }, {}],
      ]);
      expect(read.every((e) => e.streamId === streamId && e.recordedAt instanceof Date)).toBe(true);
      expect((await store.readStream(streamId, { fromVersion: 2 })).map((e) => e.version)).toEqual([2, 3]);
      expect((await store.readStream(streamId, { fromVersion: 1, toVersion: 2 })).map((e) => e.version)).toEqual([1, 2]);
      expect(await store.readStream(stream())).toEqual([]);
    });

    it('keeps text beyond ASCII, escapes and large numbers exactly, through a single append and a batch of streams', async () => {
      const data = { note: 'café ☕ 𝄞 Ω', quote: 'say "hi"\\n\ttab', control: '\u0001\u001f', big: '123456789012345678901234567890', n: 2 ** 53 - 1 };
      const metadata = { actor: 'ключ-テスト', schemaVersion: 2 };
      const [single, first, second] = [stream(), stream(), stream()];
      // Numeric expected versions: PostgreSQL's one-statement append (a new stream, then an existing one).
      await store.append({ streamId: single, expectedVersion: 0, events: [event('Noted', data, metadata)] });
      await store.append({ streamId: single, expectedVersion: 1, events: [event('Noted', data, metadata)] });
      await store.appendMany([
        { streamId: first, expectedVersion: 'no_stream', events: [event('Noted', data, metadata), event('Noted', { ...data, n: 2 })] },
        { streamId: second, expectedVersion: 'no_stream', events: [event('Noted', data, metadata)] },
      ]);
      const read = [...(await store.readStream(single)), ...(await store.readStream(first)), ...(await store.readStream(second))];
      expect(read.map((e) => [e.data, e.metadata])).toEqual([[data, metadata], [data, metadata], [data, metadata], [{ ...data, n: 2 }, {}], [data, metadata]]);
    });

    it('reads several streams at once, each from its own version, exactly as readStream reads each', async () => {
      const [long, short, empty] = [stream(), stream(), stream()];
      await store.append({ streamId: long, expectedVersion: 'no_stream', events: [event('A'), event('B'), event('C')] });
      await store.append({ streamId: short, expectedVersion: 'no_stream', events: [event('X')] });

      const read = await store.readStreams([
        { streamId: long, fromVersion: 2 },
        { streamId: short, fromVersion: 1 },
        { streamId: empty, fromVersion: 1 },
        { streamId: short, fromVersion: 2 },
      ]);

      expect([...read.keys()].sort()).toEqual([long, short, empty].sort());
      expect(read.get(long)).toEqual(await store.readStream(long, { fromVersion: 2 }));
      expect(read.get(long)?.map((e) => e.type)).toEqual(['B', 'C']);
      // Asked twice, the lowest version wins: nothing asked for is left out.
      expect(read.get(short)?.map((e) => e.type)).toEqual(['X']);
      expect(read.get(empty)).toEqual([]);
      expect(await store.readStreams([])).toEqual(new Map());
      await expect(store.readStreams([{ streamId: long, fromVersion: 0 }])).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    });

    it('reads several streams with the metadata keys asked for: each key an event has, everything else as readStream reads it', async () => {
      const streamId = stream();
      await store.append({
        streamId,
        expectedVersion: 'no_stream',
        events: [event('A', { n: 1 }, { schemaVersion: 2, balanceAfter: { available: '1.5' } }), event('B', { n: 2 }, { other: 'x' }), event('C', { n: 3 })],
      });

      const read = (await store.readStreams([{ streamId, fromVersion: 1 }], { metadataKeys: ['schemaVersion'] })).get(streamId) ?? [];

      expect(read.map((e) => e.metadata.schemaVersion)).toEqual([2, undefined, undefined]);
      // An adapter may return more of the metadata than asked (EventStoreDB reads it whole); the rest is readStream's.
      const whole = await store.readStream(streamId);
      const withoutMetadata = (events: RecordedEvent[]) => events.map(({ metadata: _metadata, ...rest }) => rest);
      expect(withoutMetadata(read)).toEqual(withoutMetadata(whole));
    });

    it('rejects a stale expected version with WRONG_EXPECTED_VERSION and writes nothing', async () => {
      const streamId = stream();
      await store.append({ streamId, expectedVersion: 0, events: [event('A'), event('B')] });
      expect(await store.append({ streamId, expectedVersion: 2, events: [event('C')] })).toMatchObject({
        nextExpectedVersion: 3,
      });

      const error = await rejection(store.append({ streamId, expectedVersion: 1, events: [event('D')] }));

      expect(error.code).toBe(EventStoreErrorCode.WRONG_EXPECTED_VERSION);
      expect(error.details).toMatchObject({ streamId, expected: 1, actual: 3 });
      expect((await store.readStream(streamId)).map((e) => e.type)).toEqual(['A', 'B', 'C']);
    });

    it("honours 'no_stream' and 'any'", async () => {
      const streamId = stream();
      await store.append({ streamId, expectedVersion: 'no_stream', events: [event('A')] });

      const error = await rejection(store.append({ streamId, expectedVersion: 'no_stream', events: [event('B')] }));
      expect(error.code).toBe(EventStoreErrorCode.WRONG_EXPECTED_VERSION);
      expect(error.details).toMatchObject({ actual: 1 });

      expect(await store.append({ streamId, expectedVersion: 'any', events: [event('C'), event('D')] })).toMatchObject({
        nextExpectedVersion: 3,
        duplicate: false,
      });
      expect(await store.append({ streamId: stream(), expectedVersion: 'any', events: [event('E')] })).toMatchObject({
        nextExpectedVersion: 1,
      });
    });

    it('treats an empty append as a version check that writes nothing', async () => {
      const streamId = stream();
      expect(await store.append({ streamId, expectedVersion: 0, events: [] })).toEqual({
        streamId,
        nextExpectedVersion: 0,
        duplicate: false,
      });
      await store.append({ streamId, expectedVersion: 0, events: [event('A')] });
      expect((await rejection(store.append({ streamId, expectedVersion: 0, events: [] }))).code).toBe(
        EventStoreErrorCode.WRONG_EXPECTED_VERSION,
      );
    });

    it('makes a re-append of stored event ids a duplicate no-op, even once the expected version is stale', async () => {
      const streamId = stream();
      const [a, b] = [event('A'), event('B')];
      await store.append({ streamId, expectedVersion: 0, events: [a, b] });

      // The ledger retrying after a crash: same ids, same expected version.
      expect(await store.append({ streamId, expectedVersion: 0, events: [a, b] })).toEqual({
        streamId,
        nextExpectedVersion: 2,
        duplicate: true,
      });
      await store.append({ streamId, expectedVersion: 2, events: [event('C')] });
      expect(await store.append({ streamId, expectedVersion: 0, events: [a, b] })).toEqual({
        streamId,
        nextExpectedVersion: 2,
        duplicate: true,
      });
      const d = event('D');
      await store.append({ streamId, expectedVersion: 'any', events: [d] });
      expect(await store.append({ streamId, expectedVersion: 'any', events: [d] })).toMatchObject({ duplicate: true });

      expect((await store.readStream(streamId)).map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
    });

    it('reports IDEMPOTENCY_CONFLICT when a stored id is reused at another position', async () => {
      const streamId = stream();
      const [a, b] = [event('A'), event('B')];
      await store.append({ streamId, expectedVersion: 0, events: [a, b] });

      const partial = await rejection(store.append({ streamId, expectedVersion: 0, events: [a, event('X')] }));
      const swapped = await rejection(store.append({ streamId, expectedVersion: 0, events: [b, a] }));

      expect(partial.code).toBe(EventStoreErrorCode.IDEMPOTENCY_CONFLICT);
      expect(swapped.code).toBe(EventStoreErrorCode.IDEMPOTENCY_CONFLICT);
      expect(await store.readStream(streamId)).toHaveLength(2);
    });

    it('answers a single append exactly at the expected version: a stored id reused there is IDEMPOTENCY_CONFLICT, a missing stream is at 0', async () => {
      const streamId = stream();
      const other = stream();
      const [a, b] = [event('A'), event('B')];
      await store.append({ streamId, expectedVersion: 0, events: [a, b] });
      await store.append({ streamId: other, expectedVersion: 0, events: [event('O')] });

      // At the stream's current version (2): the position is free, the id is not.
      expect((await rejection(store.append({ streamId, expectedVersion: 2, events: [{ ...a }] }))).code).toBe(EventStoreErrorCode.IDEMPOTENCY_CONFLICT);
      expect((await rejection(store.append({ streamId: other, expectedVersion: 1, events: [{ ...b }] }))).code).toBe(EventStoreErrorCode.IDEMPOTENCY_CONFLICT);
      // A stream that does not exist is at version 0, whatever a caller expects.
      const missing = await rejection(store.append({ streamId: stream(), expectedVersion: 3, events: [event('X')] }));
      expect(missing.code).toBe(EventStoreErrorCode.WRONG_EXPECTED_VERSION);
      expect(missing.details).toMatchObject({ actual: 0 });

      expect((await store.readStream(streamId)).map((e) => e.type)).toEqual(['A', 'B']);
      expect((await store.readStream(other)).map((e) => e.type)).toEqual(['O']);
      expect(await store.append({ streamId, expectedVersion: 2, events: [event('C')] })).toMatchObject({ streamId, nextExpectedVersion: 3, duplicate: false });
    });

    it('rejects malformed requests with INVALID_REQUEST', async () => {
      const streamId = stream();
      const notUuid = await rejection(
        store.append({ streamId, expectedVersion: 'any', events: [{ id: 'nope', type: 'A', data: {} }] }),
      );
      const a = event('A');
      const twice = await rejection(store.append({ streamId, expectedVersion: 'any', events: [a, a] }));
      expect([notUuid.code, twice.code]).toEqual([EventStoreErrorCode.INVALID_REQUEST, EventStoreErrorCode.INVALID_REQUEST]);
      expect(await store.readStream(streamId)).toEqual([]);
    });

    it('appends several streams in one appendMany, results in request order', async () => {
      const [s1, s2] = [stream(), stream()];
      const results = await store.appendMany([
        { streamId: s2, expectedVersion: 'no_stream', events: [event('A')] },
        { streamId: s1, expectedVersion: 'no_stream', events: [event('B'), event('C')] },
      ]);
      expect(results).toMatchObject([
        { streamId: s2, nextExpectedVersion: 1, duplicate: false },
        { streamId: s1, nextExpectedVersion: 2, duplicate: false },
      ]);
    });

    it('appendMany mixes new streams, existing streams, duplicates and one stream twice, in call order', async () => {
      const [fresh, existing, again] = [stream(), stream(), stream()];
      const stored = event('stored');
      await store.append({ streamId: existing, expectedVersion: 'no_stream', events: [stored] });
      const [a, b, c, d] = [event('A'), event('B'), event('C'), event('D')];

      const results = await store.appendMany([
        { streamId: again, expectedVersion: 'no_stream', events: [a] },
        { streamId: existing, expectedVersion: 'no_stream', events: [stored] }, // the retry of a committed append
        { streamId: fresh, expectedVersion: 'no_stream', events: [b] },
        { streamId: existing, expectedVersion: 1, events: [c] },
        { streamId: again, expectedVersion: 1, events: [d] }, // on the version the first request left
      ]);

      expect(results).toMatchObject([
        { streamId: again, nextExpectedVersion: 1, duplicate: false },
        { streamId: existing, nextExpectedVersion: 1, duplicate: true },
        { streamId: fresh, nextExpectedVersion: 1, duplicate: false },
        { streamId: existing, nextExpectedVersion: 2, duplicate: false },
        { streamId: again, nextExpectedVersion: 2, duplicate: false },
      ]);
      expect((await store.readStream(again)).map((e) => [e.id, e.version])).toEqual([[a.id, 1], [d.id, 2]]);
      expect((await store.readStream(existing)).map((e) => e.id)).toEqual([stored.id, c.id]);
      // The global order is the call's order.
      const mine = new Set([a.id, b.id, c.id, d.id]);
      const all = await eventually(async () => {
        const read = (await readToEnd(store, START, 500)).filter((e) => mine.has(e.id));
        return read.length === 4 ? read : undefined;
      });
      expect(all.map((e) => e.id)).toEqual([a.id, b.id, c.id, d.id]);
    });

    if (factory.atomicAppendMany) {
      it('appendMany is all-or-nothing: one conflict writes nothing', async () => {
        const [fresh, existing] = [stream(), stream()];
        await store.append({ streamId: existing, expectedVersion: 0, events: [event('A')] });

        const error = await rejection(
          store.appendMany([
            { streamId: fresh, expectedVersion: 'no_stream', events: [event('B')] },
            { streamId: existing, expectedVersion: 0, events: [event('C')] },
          ]),
        );

        expect(error.code).toBe(EventStoreErrorCode.WRONG_EXPECTED_VERSION);
        expect(await store.readStream(fresh)).toEqual([]);
        expect(await store.readStream(existing)).toHaveLength(1);
        // Nothing half-done either: the fresh stream is still a fresh stream.
        expect(await store.append({ streamId: fresh, expectedVersion: 'no_stream', events: [event('D')] })).toMatchObject({
          nextExpectedVersion: 1,
        });
      });
    } else {
      it('appendMany is stream by stream, and retrying the whole call after a conflict is safe', async () => {
        const [first, second] = [stream(), stream()];
        await store.append({ streamId: second, expectedVersion: 0, events: [event('A')] });
        const b = event('B');

        const error = await rejection(
          store.appendMany([
            { streamId: first, expectedVersion: 'no_stream', events: [b] },
            { streamId: second, expectedVersion: 0, events: [event('C')] },
          ]),
        );
        expect(error.code).toBe(EventStoreErrorCode.WRONG_EXPECTED_VERSION);

        const retried = await store.appendMany([
          { streamId: first, expectedVersion: 'no_stream', events: [b] },
          { streamId: second, expectedVersion: 1, events: [event('C')] },
        ]);
        expect(retried.map((r) => r.duplicate)).toEqual([true, false]);
        expect(await store.readStream(first)).toHaveLength(1);
      });
    }

    it('streamHeads gives each stream its current version and the id of the event there, 0 for a missing one, following appends', async () => {
      const [s1, s2, missing] = [stream(), stream(), stream()];
      expect(await store.streamHeads([])).toEqual(new Map());
      const [a, b, c, d, e] = [event('A'), event('B'), event('C'), event('D'), event('E')];
      /** The head of a stream as its last event says: its version, id and the instant it was recorded at. */
      const headOf = async (streamId: string) => {
        const last = (await store.readStream(streamId)).at(-1);
        return last ? headAt(last) : { version: 0 };
      };
      const first = await store.append({ streamId: s1, expectedVersion: 'no_stream', events: [a, b] });
      await store.append({ streamId: s2, expectedVersion: 'no_stream', events: [c] });

      expect(await store.streamHeads([s1, s2, missing])).toEqual(new Map([[s1, await headOf(s1)], [s2, await headOf(s2)], [missing, { version: 0 }]]));
      expect([(await headOf(s1)).eventId, (await headOf(s2)).eventId]).toEqual([b.id, c.id]);
      const [next] = await store.appendMany([{ streamId: s2, expectedVersion: 1, events: [d, e] }]);
      // An append that says when its events were recorded (PostgreSQL, in a transaction or in one statement) says it right.
      if (first.recordedAt !== undefined) expect(first.recordedAt).toEqual((await headOf(s1)).recordedAt);
      if (next.recordedAt !== undefined) expect(next.recordedAt).toEqual((await headOf(s2)).recordedAt);
      // Asked twice, answered once; a duplicate append moves nothing.
      await store.append({ streamId: s1, expectedVersion: 'no_stream', events: (await store.readStream(s1)).map(asNew) });
      expect(await store.streamHeads([s2, s1, s2])).toEqual(new Map([[s2, await headOf(s2)], [s1, await headOf(s1)]]));
      expect((await headOf(s2)).eventId).toBe(e.id);
    });

    const openTransaction = factory.openTransaction;
    if (openTransaction) {
      describe('unit of work (a transaction shared with the caller)', () => {
        it('offers joinTransaction', () => {
          expect(typeof store.joinTransaction).toBe('function');
        });

        it('appends in the caller\'s transaction: invisible until it commits, then all there', async () => {
          const [s1, s2] = [stream(), stream()];
          const open = await openTransaction();
          const unitOfWork = join(store, open.tx);
          try {
            const results = await store.appendMany(
              [
                { streamId: s1, expectedVersion: 'no_stream', events: [event('A')] },
                { streamId: s2, expectedVersion: 'no_stream', events: [event('B'), event('C')] },
              ],
              unitOfWork,
            );
            expect(results.map((r) => r.nextExpectedVersion)).toEqual([1, 2]);
            // The unit of work sees its own writes; everyone else sees nothing yet.
            expect(await versionsIn(store, [s1, s2], unitOfWork)).toEqual(new Map([[s1, 1], [s2, 2]]));
            expect(await versionsIn(store, [s1, s2])).toEqual(new Map([[s1, 0], [s2, 0]]));
            expect(await store.readStream(s2)).toEqual([]);
          } catch (e) {
            await open.rollback();
            throw e;
          }
          await open.commit();
          expect(await versionsIn(store, [s1, s2])).toEqual(new Map([[s1, 1], [s2, 2]]));
          expect((await store.readStream(s2)).map((e) => e.type)).toEqual(['B', 'C']);
        });

        it('writes nothing when the caller rolls back, and the stream stays new', async () => {
          const streamId = stream();
          const open = await openTransaction();
          try {
            await store.appendMany([{ streamId, expectedVersion: 'no_stream', events: [event('A')] }], join(store, open.tx));
          } finally {
            await open.rollback();
          }
          expect(await store.readStream(streamId)).toEqual([]);
          expect(await versionsIn(store, [streamId])).toEqual(new Map([[streamId, 0]]));
          expect(await store.append({ streamId, expectedVersion: 'no_stream', events: [event('B')] })).toMatchObject({
            nextExpectedVersion: 1,
          });
        });

        it('refuses a unit of work it did not make with INVALID_REQUEST', async () => {
          const streamId = stream();
          const forged = Object.freeze({}) as UnitOfWork;
          const error = await rejection(store.appendMany([{ streamId, expectedVersion: 'any', events: [event('A')] }], forged));
          expect(error.code).toBe(EventStoreErrorCode.INVALID_REQUEST);
          expect((await rejection(store.streamHeads([streamId], forged))).code).toBe(EventStoreErrorCode.INVALID_REQUEST);
          expect(await store.readStream(streamId)).toEqual([]);
        });
      });
    } else {
      it('offers no joinTransaction: each appendMany commits on its own (callers take the idempotent path)', async () => {
        expect(store.joinTransaction).toBeUndefined();
        const streamId = stream();
        const forged = Object.freeze({}) as UnitOfWork;
        const error = await rejection(store.appendMany([{ streamId, expectedVersion: 'any', events: [event('A')] }], forged));
        expect(error.code).toBe(EventStoreErrorCode.INVALID_REQUEST);
        expect(await store.readStream(streamId)).toEqual([]);
      });
    }

    it('makes the idempotent path safe: a redelivered decision appended again after its first commit is a duplicate', async () => {
      // The ledger without a shared transaction: append, crash before the Kafka offset is stored, redeliver, decide
      // again on an unchanged cache (worst case) with the same deterministic ids and the same expected version.
      const streamId = stream();
      await store.append({ streamId, expectedVersion: 'no_stream', events: [event('Opened')] });
      const decided = [event('Debited'), event('Debited')];
      const first = await store.appendMany([{ streamId, expectedVersion: 1, events: decided }]);
      const again = await store.appendMany([{ streamId, expectedVersion: 1, events: decided }]);

      expect(first).toMatchObject([{ streamId, nextExpectedVersion: 3, duplicate: false }]);
      expect(again).toEqual([{ streamId, nextExpectedVersion: 3, duplicate: true }]);
      expect(await versionsIn(store, [streamId])).toEqual(new Map([[streamId, 3]]));
      expect(await store.readStream(streamId)).toHaveLength(3);
    });

    it('readAll returns events after a checkpoint in global order, paging without gaps or repeats', async () => {
      const [s1, s2] = [stream(), stream()];
      const ids = [event('A'), event('B'), event('C'), event('D')];
      await store.append({ streamId: s1, expectedVersion: 'no_stream', events: [ids[0]] });
      await store.append({ streamId: s2, expectedVersion: 'no_stream', events: [ids[1]] });
      await store.appendMany([{ streamId: s1, expectedVersion: 1, events: [ids[2], ids[3]] }]);

      const all = await eventually(async () => {
        const read = (await readToEnd(store, START, 3)).filter((e) => e.streamId === s1 || e.streamId === s2);
        return read.length === 4 ? read : undefined;
      });

      expect(all.map((e) => e.id)).toEqual(ids.map((e) => e.id));
      expect(all.map((e) => [e.streamId, e.version])).toEqual([[s1, 1], [s2, 1], [s1, 2], [s1, 3]]);
      expectIncreasing(all.map((e) => e.checkpoint));
      // A checkpoint taken mid-way resumes exactly after it.
      const rest = (await readToEnd(store, all[1].checkpoint, 2)).filter((e) => e.streamId === s1 || e.streamId === s2);
      expect(rest.map((e) => e.id)).toEqual([ids[2].id, ids[3].id]);
    });

    it('subscribeToAll delivers appended events in order, each once, sequentially, and stops cleanly', async () => {
      const [s1, s2] = [stream(), stream()];
      const ours = new Set([s1, s2]);
      const delivered: RecordedEvent[] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const subscription = store.subscribeToAll({
        after: START,
        batchSize: 2,
        onEvents: async (events) => {
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          await sleep(5);
          delivered.push(...events.filter((e) => ours.has(e.streamId)));
          inFlight--;
        },
      });
      const written = [event('A'), event('B'), event('C'), event('D'), event('E')];
      await store.append({ streamId: s1, expectedVersion: 'no_stream', events: [written[0], written[1]] });
      await store.append({ streamId: s2, expectedVersion: 'no_stream', events: [written[2]] });
      await store.appendMany([
        { streamId: s1, expectedVersion: 2, events: [written[3]] },
        { streamId: s2, expectedVersion: 1, events: [written[4]] },
      ]);

      await eventually(async () => delivered.length >= 5 || undefined);
      await subscription.stop();
      const afterStop = event('after stop');
      await store.append({ streamId: s1, expectedVersion: 3, events: [afterStop] });
      // Sentinel: a subscription still running delivers the event, so a stopped one would have had it by now too.
      await deliveredToAnother(store, afterStop.id);

      // Within one appendMany the two streams' relative order is the adapter's business; within a stream it is not.
      expect(delivered.map((e) => e.id).slice(0, 3)).toEqual(written.slice(0, 3).map((e) => e.id));
      expect(new Set(delivered.slice(3).map((e) => e.id))).toEqual(new Set([written[3].id, written[4].id]));
      expect(delivered).toHaveLength(5);
      expectIncreasing(delivered.map((e) => e.checkpoint));
      expect(maxInFlight).toBe(1);
    });

    it('subscribeToAllJson delivers what subscribeToAll does, the data and the asked metadata keys as JSON text', async () => {
      const streamId = stream();
      const written = [
        event('A', { n: 1, text: 'é "q" \\ ☃', nested: { list: [1, 'two', null] } }, { schemaVersion: 2, balanceAfter: { available: '1.5' }, actor: 'svc', gone: null }),
        event('B', {}, { other: 'x' }),
        event('C', { n: 3 }),
      ];
      await store.append({ streamId, expectedVersion: 'no_stream', events: written });
      const delivered: RecordedEventJson[] = [];
      const subscription = store.subscribeToAllJson({
        after: START,
        metadataKeys: ['schemaVersion', 'balanceAfter', 'actor', 'gone', 'missing'],
        onEvents: async (events) => {
          delivered.push(...events.filter((e) => e.streamId === streamId));
        },
      });
      await eventually(async () => delivered.length >= 3 || undefined);
      await subscription.stop();

      const whole = await store.readStream(streamId);
      expect(delivered.map(({ dataJson, metadataJson: _texts, ...rest }) => ({ ...rest, data: JSON.parse(dataJson) as unknown }))).toEqual(
        whole.map(({ metadata: _metadata, ...rest }) => rest),
      );
      const metadata = delivered.map((e) => Object.fromEntries(Object.entries(e.metadataJson).map(([key, text]) => [key, JSON.parse(text) as unknown])));
      expect(metadata).toEqual([{ schemaVersion: 2, balanceAfter: { available: '1.5' }, actor: 'svc', gone: null }, {}, {}]);
    });

    it('subscribeToAll resumes strictly after its checkpoint and offers a failed batch again', async () => {
      const streamId = stream();
      const written = [event('A'), event('B'), event('C')];
      await store.append({ streamId, expectedVersion: 'no_stream', events: written });
      const [first] = await store.readStream(streamId, { toVersion: 1 });
      const delivered: string[] = [];
      const errors: Error[] = [];
      let failOnce = true;

      const subscription = store.subscribeToAll({
        after: first.checkpoint,
        onEvents: async (events) => {
          const mine = events.filter((e) => e.streamId === streamId);
          if (mine.length > 0 && failOnce) {
            failOnce = false;
            throw new Error('handler failed');
          }
          delivered.push(...mine.map((e) => e.id));
        },
        onError: (e) => errors.push(e),
      });
      try {
        await eventually(async () => delivered.length >= 2 || undefined);
        // Sentinel: events are delivered in order, so once a later marker arrives, a repeat of B or C would have too.
        const marker = event('marker');
        await store.append({ streamId, expectedVersion: 3, events: [marker] });
        await eventually(async () => delivered.includes(marker.id) || undefined);
        delivered.splice(delivered.indexOf(marker.id), 1);
      } finally {
        await subscription.stop();
      }

      expect(delivered).toEqual([written[1].id, written[2].id]);
      expect(errors.map((e) => e.message)).toContain('handler failed');
    });
  });
}

function stream(): string {
  return `contract-${randomUUID()}`;
}

function event(type: string, data: Record<string, unknown> = {}, metadata?: Record<string, unknown>): NewEvent {
  return { id: randomUUID(), type, data, ...(metadata ? { metadata } : {}) };
}

/** Each stream's version alone, from streamHeads. */
async function versionsIn(store: EventStore, streamIds: string[], unitOfWork?: UnitOfWork): Promise<Map<string, number>> {
  return new Map([...(await store.streamHeads(streamIds, unitOfWork))].map(([streamId, head]) => [streamId, head.version]));
}

function asNew(stored: RecordedEvent): NewEvent {
  return { id: stored.id, type: stored.type, data: stored.data, metadata: stored.metadata };
}

function join(store: EventStore, tx: SqlTransaction): UnitOfWork {
  if (!store.joinTransaction) throw new Error('the store offers no joinTransaction');
  return store.joinTransaction(tx);
}

async function rejection(promise: Promise<unknown>): Promise<EventStoreError> {
  try {
    await promise;
  } catch (e) {
    if (isEventStoreError(e)) return e;
    throw e;
  }
  throw new Error('expected the call to fail with an EventStoreError');
}

async function readToEnd(store: EventStore, after: Checkpoint, pageSize: number): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (let cp = after; ; ) {
    const page = await store.readAll({ after: cp, limit: pageSize });
    out.push(...page);
    if (page.length < pageSize) return out;
    cp = page[page.length - 1].checkpoint;
  }
}

function expectIncreasing(checkpoints: Checkpoint[]): void {
  for (let i = 1; i < checkpoints.length; i++) expect(checkpoints[i] > checkpoints[i - 1]).toBe(true);
}

/** Resolves once a fresh subscription from the start of the store has delivered `eventId` (then stops it). */
export async function deliveredToAnother(store: EventStore, eventId: string): Promise<void> {
  let seen = false;
  const probe = store.subscribeToAll({
    after: START,
    onEvents: async (events) => {
      if (events.some((e) => e.id === eventId)) seen = true;
    },
  });
  try {
    await eventually(async () => seen || undefined, 30_000);
  } finally {
    await probe.stop();
  }
}

// Generous: the PostgreSQL tail waits for the oldest open transaction of a database shared with other test runs.
async function eventually<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(25);
  }
}

