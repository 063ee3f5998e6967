import { setTimeout as sleep } from 'node:timers/promises';
import type { Checkpoint, RecordedEvent } from './event-store.port';
import { PollingSubscription, type WakeUpSource } from './polling-subscription.worker';

const polling = { minIdleMs: 5, maxIdleMs: 20, errorBackoffMs: 5 };

function recorded(n: number): RecordedEvent {
  return {
    id: `e${n}`,
    streamId: 's',
    version: n,
    type: 'T',
    data: {},
    metadata: {},
    recordedAt: new Date(0),
    checkpoint: String(n).padStart(4, '0'),
  };
}

/** An in-memory log read like readAll: strictly after the checkpoint, up to limit. */
function log(): { events: RecordedEvent[]; read: (after: Checkpoint, limit: number) => Promise<RecordedEvent[]> } {
  const events: RecordedEvent[] = [];
  return { events, read: async (after, limit) => events.filter((e) => e.checkpoint > after).slice(0, limit) };
}

/** The log of `events` read like readAll, each read's checkpoint recorded in `reads`. */
function recordedLog(...numbers: number[]): { reads: string[]; read: (after: Checkpoint, limit: number) => Promise<RecordedEvent[]> } {
  const { events, read } = log();
  events.push(...numbers.map(recorded));
  const reads: string[] = [];
  return {
    reads,
    read: (after, limit) => {
      reads.push(after);
      return read(after, limit);
    },
  };
}

async function until(probe: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !probe(); i++) await sleep(5);
  expect(probe()).toBe(true);
}

describe('PollingSubscription', () => {
  it('delivers batches in order, sequentially, and keeps tailing', async () => {
    const { events, read } = log();
    events.push(...[1, 2, 3, 4, 5].map(recorded));
    const batches: string[][] = [];
    const sub = new PollingSubscription(read, { after: '', batchSize: 2, onEvents: async (b) => void batches.push(b.map((e) => e.id)) }, polling);
    await until(() => batches.length === 3);
    events.push(recorded(6));
    await until(() => batches.length === 4);
    await sub.stop();
    expect(batches).toEqual([['e1', 'e2'], ['e3', 'e4'], ['e5'], ['e6']]);
  });

  it('says it caught up only once a read finds nothing more: after a failed batch is delivered, not before', async () => {
    const { events, read } = log();
    events.push(recorded(1), recorded(2));
    const seen: string[] = [];
    let fail = true;
    const sub = new PollingSubscription(
      read,
      {
        after: '',
        batchSize: 1,
        onEvents: async (b) => {
          if (b[0].id === 'e2' && fail) {
            fail = false;
            throw new Error('publish failed');
          }
          seen.push(b[0].id);
        },
        onError: (e) => seen.push(`error: ${e.message}`),
        onCaughtUp: () => seen.push('caught up'),
      },
      polling,
    );
    await until(() => seen.includes('caught up'));
    await sub.stop();
    expect(seen.slice(0, 4)).toEqual(['e1', 'error: publish failed', 'e2', 'caught up']);
  });

  it('offers a batch again after onEvents fails, and reports the error', async () => {
    const { events, read } = log();
    events.push(recorded(1));
    const seen: string[] = [];
    const errors: string[] = [];
    let fail = true;
    const sub = new PollingSubscription(
      read,
      {
        after: '',
        onEvents: async (b) => {
          if (fail) {
            fail = false;
            throw new Error('boom');
          }
          seen.push(...b.map((e) => e.id));
        },
        onError: (e) => errors.push(e.message),
      },
      polling,
    );
    await until(() => seen.length === 1);
    await sub.stop();
    expect([seen, errors]).toEqual([['e1'], ['boom']]);
  });

  it('survives failing reads and stops promptly while idle', async () => {
    let calls = 0;
    const errors: Error[] = [];
    const sub = new PollingSubscription(
      async () => {
        if (++calls === 1) throw new Error('down');
        return [];
      },
      { after: '', onEvents: async () => undefined, onError: (e) => errors.push(e) },
      { minIdleMs: 10_000, maxIdleMs: 10_000, errorBackoffMs: 1 },
    );
    await until(() => calls >= 2);
    const started = Date.now();
    await sub.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(errors.map((e) => e.message)).toEqual(['down']);
  });

  it('wakes early on a wake-up signal and releases the source on stop', async () => {
    const { events, read } = log();
    let wake: () => void = () => undefined;
    const stopped = jest.fn(async () => undefined);
    const source: WakeUpSource = { start: async (w) => void (wake = w), stop: stopped };
    const seen: string[] = [];
    const sub = new PollingSubscription(
      read,
      { after: '', onEvents: async (b) => void seen.push(...b.map((e) => e.id)) },
      { minIdleMs: 60_000, maxIdleMs: 60_000, errorBackoffMs: 1 },
      source,
    );
    await sleep(20);
    events.push(recorded(1));
    wake();
    await until(() => seen.length === 1);
    await sub.stop();
    expect(stopped).toHaveBeenCalledTimes(1);
  });

  // Every append notifies (single appends at most every 5 ms): under load a failing onEvents (a topic the relay may
  // not write) was retried as often as notifications came, re-reading its page each time, not once per backoff.
  it('waits its error backoff after a failure however many notifications come, and still stops at once', async () => {
    const { reads, read } = recordedLog(1);
    let wake: () => void = () => undefined;
    const source: WakeUpSource = { start: async (w) => void (wake = w), stop: async () => undefined };
    const failures: number[] = [];
    const sub = new PollingSubscription(
      read,
      { after: '', onEvents: async () => { failures.push(Date.now()); throw new Error('the broker refuses this topic'); }, onError: () => undefined },
      { minIdleMs: 5, maxIdleMs: 5, errorBackoffMs: 300 },
      source,
    );
    const notifying = setInterval(() => wake(), 2);
    try {
      await sleep(700);
    } finally {
      clearInterval(notifying);
    }
    const stopping = Date.now();
    await sub.stop();
    expect(Date.now() - stopping).toBeLessThan(100);
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.length).toBeLessThanOrEqual(3); // at 0, ~300 and ~600 ms
    expect(reads.length).toBeLessThanOrEqual(3);
  });

  it('reads the page after a full one while onEvents handles it, and none after a partial one', async () => {
    const { reads, read } = recordedLog(1, 2, 3, 4, 5);
    const log_: string[] = [];
    let release: () => void = () => undefined;
    const sub = new PollingSubscription(
      read,
      {
        after: '',
        batchSize: 2,
        onEvents: async (b) => {
          log_.push(`handling ${b.map((e) => e.id).join(',')} after reads ${reads.join('|')}`);
          if (b[0].id === 'e1') await new Promise<void>((done) => (release = done));
        },
      },
      polling,
    );
    // While the first (full) page is being handled, the page after it is already read.
    await until(() => reads.length === 2);
    expect(reads).toEqual(['', '0002']);
    release();
    await until(() => log_.length === 3);
    await sub.stop();
    // Each full page's successor is read as its handling starts; the last page (e5) was not full, so nothing was read
    // ahead of it.
    expect(log_).toEqual(['handling e1,e2 after reads |0002', 'handling e3,e4 after reads |0002|0004', 'handling e5 after reads |0002|0004']);
  });

  it('drops the page read ahead when onEvents fails, and offers the failed batch again from its checkpoint', async () => {
    const { reads, read } = recordedLog(1, 2, 3, 4);
    const seen: string[][] = [];
    let fail = true;
    const sub = new PollingSubscription(
      read,
      {
        after: '',
        batchSize: 2,
        onEvents: async (b) => {
          if (fail) {
            fail = false;
            throw new Error('boom');
          }
          seen.push(b.map((e) => e.id));
        },
        onError: () => undefined,
      },
      polling,
    );
    await until(() => seen.length === 2);
    await sub.stop();
    expect(seen).toEqual([['e1', 'e2'], ['e3', 'e4']]);
    // '' (failed), '0002' (read ahead, dropped), '' again, '0002' read ahead of the handled batch.
    expect(reads.slice(0, 4)).toEqual(['', '0002', '', '0002']);
  });
});
