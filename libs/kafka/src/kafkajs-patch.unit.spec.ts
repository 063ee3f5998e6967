import fc from 'fast-check';

/**
 * patches/kafkajs+2.2.4.patch (applied by patch-package on npm ci): kafkajs's Encoder allocates without zero-filling and
 * writes varints in place, its CRC32C computes eight bytes a step, the producer groups a send's messages per
 * partition in one pass, a request is framed in one buffer of its size (one copy of its payload), the record decoder
 * keeps a header named like an Object.prototype member (a defect), and a connection's request queue leaves no timer
 * behind once nothing waits (a defect: kafkajs#1704). These hold the patched code to what the unpatched code
 * answered; the broker itself checks every record batch's CRC in the integration tests.
 */
// kafkajs's internals have no types: required and typed here as far as the tests use them.
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (buffer: Buffer) => number;
const Encoder = require('kafkajs/src/protocol/encoder') as new () => {
  writeVarInt(value: number): unknown;
  writeUVarInt(value: number): unknown;
  writeVarLong(value: number): unknown;
  writeBuffer(value: Buffer): unknown;
  buffer: Buffer;
};
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (options: object) => Promise<{ buffer: Buffer }> };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (options: object) => unknown;
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<{ records: DecodedRecord[] }>;
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition') as (options: object) => Record<string, unknown[]>;
const RequestQueue = require('kafkajs/src/network/requestQueue') as new (options: object) => RequestQueueInternals;
const createRequest = require('kafkajs/src/protocol/request') as (options: {
  correlationId: number;
  clientId: string | null;
  request: { apiKey: number; apiVersion: number; encode(): Promise<InstanceType<typeof Encoder>> };
}) => Promise<{ buffer: Buffer }>;

interface RequestQueueInternals {
  push(request: { entry: object; expectResponse: boolean; sendRequest: () => void }): void;
  fulfillRequest(response: { correlationId: number; payload: Buffer; size: number }): void;
  maybeThrottle(clientSideThrottleTime: number): void;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
}

interface DecodedRecord {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  timestamp: string;
  headers: Record<string, Buffer>;
}

/** CRC-32C bit by bit (Castagnoli, reflected 0x82F63B78): the definition, with no table. */
function crc32CReference(bytes: Uint8Array): number {
  let crc = -1;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit += 1) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return (crc ^ -1) >>> 0;
}

/** Zigzag LEB128, the varint Kafka's records use, as the specification writes it. */
function varint(value: bigint): number[] {
  let zigzag = value >= 0n ? value << 1n : (-value << 1n) - 1n;
  const bytes: number[] = [];
  while (zigzag >= 0x80n) {
    bytes.push(Number((zigzag & 0x7fn) | 0x80n));
    zigzag >>= 7n;
  }
  bytes.push(Number(zigzag));
  return bytes;
}

describe('kafkajs, as patched', () => {
  it('given any bytes, its CRC32C is the Castagnoli CRC (and of "123456789", 0xE3069283)', () => {
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2_000 }), fc.nat(7), (bytes, offset) => {
        // A view at an offset into a larger buffer, as the encoder's slices are.
        const view = Buffer.concat([Buffer.alloc(offset), Buffer.from(bytes)]).subarray(offset);
        expect(crc32C(view)).toBe(crc32CReference(bytes));
      }),
      { numRuns: 2_000 },
    );
  });

  it('given any 32-bit or safe 64-bit integer, writes the zigzag varint and nothing else', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.maxSafeInteger(), (int32, int64) => {
        const encoder = new Encoder();
        encoder.writeVarInt(int32);
        encoder.writeVarLong(int64);
        expect([...encoder.buffer]).toEqual([...varint(BigInt(int32)), ...varint(BigInt(int64))]);
      }),
      { numRuns: 2_000 },
    );
    const large = new Encoder();
    large.writeUVarInt(0xffffffff);
    expect([...large.buffer]).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  it('given any records, encodes a record batch that decodes to the same records, with the CRC of its body', async () => {
    // Header names are prefixed so toEqual compares plain keys; names on Object.prototype have their own test below.
    const header = fc.dictionary(fc.string({ maxLength: 8 }).map((name) => `h-${name}`), fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes)), { maxKeys: 3 });
    const record = fc.record({ key: fc.uint8Array({ maxLength: 40 }), value: fc.uint8Array({ maxLength: 3_000 }), headers: header });
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 40 }), async (records) => {
        const firstTimestamp = 1_764_000_000_000;
        const batch = await RecordBatch({
          firstTimestamp,
          maxTimestamp: firstTimestamp + records.length,
          lastOffsetDelta: records.length - 1,
          records: records.map((r, i) => Record({ offsetDelta: i, timestampDelta: i, key: Buffer.from(r.key), value: Buffer.from(r.value), headers: r.headers })),
        });
        const bytes = batch.buffer;
        // firstOffset (8), length (4), partitionLeaderEpoch (4), magic (1), then the CRC of everything after it.
        expect(bytes.readUInt32BE(17)).toBe(crc32CReference(bytes.subarray(21)));
        const decoded = await decodeRecordBatch(new Decoder(bytes));
        expect(decoded.records.map((r) => ({ key: [...(r.key ?? [])], value: [...(r.value ?? [])], offset: r.offset, timestamp: r.timestamp, headers: r.headers }))).toEqual(
          records.map((r, i) => ({ key: [...r.key], value: [...r.value], offset: String(i), timestamp: String(firstTimestamp + i), headers: r.headers })),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('decodes headers named like Object.prototype members (valueOf, constructor, __proto__) as the bytes sent, repeated names as a list', async () => {
    const names = ['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty'];
    const headers = Object.fromEntries(names.map((name) => [name, Buffer.from(`v-${name}`)]));
    Object.defineProperty(headers, '__proto__', { value: Buffer.from('v-__proto__'), enumerable: true });
    const batch = await RecordBatch({ records: [Record({ key: Buffer.from('k'), value: Buffer.from('v'), headers: { ...headers, twice: [Buffer.from('a'), Buffer.from('b')] } })] });
    const [decoded] = (await decodeRecordBatch(new Decoder(batch.buffer))).records;
    for (const name of names) expect([name, Object.prototype.hasOwnProperty.call(decoded.headers, name) && String(decoded.headers[name])]).toEqual([name, `v-${name}`]);
    expect(Object.getPrototypeOf(decoded.headers)).toBe(Object.prototype);
    expect((decoded.headers as unknown as Record<string, Buffer[]>).twice.map(String)).toEqual(['a', 'b']);
  });

  it('given any messages and partitioner, groups them per partition in their order', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(5), { maxLength: 500 }), (partitions) => {
        const messages = partitions.map((partition, index) => ({ key: `k-${index}`, partition }));
        const grouped = groupMessagesPerPartition({
          topic: 't',
          partitionMetadata: [{ partitionId: 0 }],
          messages,
          partitioner: ({ message }: { message: { partition: number } }) => message.partition,
        });
        const expected: Record<string, unknown[]> = {};
        for (const message of messages) (expected[message.partition] ??= []).push(message);
        expect(grouped).toEqual(expected);
        expect(Object.keys(grouped)).toEqual(Object.keys(expected));
      }),
    );
    expect(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages: [{ key: 'k' }], partitioner: () => 0 })).toEqual({});
  });

  it('given any request, frames it as Kafka reads it: its size, api key, version, correlation id, client id, then the payload', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 4096 }),
        fc.option(fc.string({ unit: 'grapheme', maxLength: 40 }), { nil: null }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 2 ** 15 - 1 }),
        fc.integer({ min: 0, max: 20 }),
        async (bytes, clientId, correlationId, apiKey, apiVersion) => {
          const payload = Buffer.from(bytes);
          const encoded = new Encoder();
          encoded.writeBuffer(payload);
          const framed = await createRequest({ correlationId, clientId, request: { apiKey, apiVersion, encode: async () => encoded } });
          const client = clientId === null ? Buffer.from([0xff, 0xff]) : Buffer.concat([Buffer.alloc(2), Buffer.from(clientId, 'utf8')]);
          if (clientId !== null) client.writeInt16BE(Buffer.byteLength(clientId, 'utf8'), 0);
          const header = Buffer.alloc(8);
          header.writeInt16BE(apiKey, 0);
          header.writeInt16BE(apiVersion, 2);
          header.writeInt32BE(correlationId, 4);
          const body = Buffer.concat([header, client, payload]);
          const size = Buffer.alloc(4);
          size.writeInt32BE(body.length, 0);
          expect(framed.buffer.equals(Buffer.concat([size, body]))).toBe(true);
        },
      ),
    );
  });

  describe("a connection's request queue", () => {
    const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const newQueue = () => new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'b:9092', logger: silent });
    const request = (correlationId: number, sent: number[]) => ({
      entry: { correlationId, apiKey: 3, apiName: 'Metadata', apiVersion: 6, resolve: () => undefined, reject: () => undefined },
      expectResponse: true,
      sendRequest: () => sent.push(correlationId),
    });

    // kafkajs 2.2.4 scheduled a check of the pending requests after every response, and every check the next one, at
    // `throttledUntil - Date.now()` ms: negative when not throttled, so every millisecond (Node 24 warns
    // TimeoutNegativeWarning), for as long as the connection lived, in every process and for every broker connection.
    it('leaves no check scheduled once the last response is in and nothing waits', () => {
      const queue = newQueue();
      const sent: number[] = [];
      queue.push(request(1, sent));
      queue.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
      expect(sent).toEqual([1]);
      expect(queue.throttleCheckTimeoutId).toBeNull();
    });

    it('still sends a request that waited behind a full queue, and one that waited out the broker\'s throttling', async () => {
      const queue = newQueue();
      const sent: number[] = [];
      queue.push(request(1, sent));
      queue.push(request(2, sent)); // one in flight at most: waits
      expect(sent).toEqual([1]);
      queue.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
      expect(sent).toEqual([1, 2]);
      queue.maybeThrottle(30);
      queue.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 });
      queue.push(request(3, sent)); // throttled: waits for the throttle's end
      expect(sent).toEqual([1, 2]);
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(sent).toEqual([1, 2, 3]);
      expect(queue.pending).toEqual([]);
      queue.fulfillRequest({ correlationId: 3, payload: Buffer.alloc(0), size: 0 });
      expect(queue.throttleCheckTimeoutId).toBeNull();
    });
  });
});
