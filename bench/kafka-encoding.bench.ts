/**
 * What the relay's producer spends encoding one event: kafkajs's Produce request (v3, the version it speaks to Kafka 3)
 * for a relay-sized send, 6 partitions × 95 records of 880 bytes with a trace header, encoded in-process. kafkajs is
 * patched (patches/kafkajs+2.2.4.patch): this phase gave 11.1–11.6 µs per record with the patch and 18.6–28.7 µs
 * without it in session 16 (docs/benchmarks.md).
 */
import { performance } from './bench.harness';

// kafkajs's internals have no types: required and typed here as far as the bench uses them.
const ProduceRequest = require('kafkajs/src/protocol/requests/produce/v3/request') as (options: object) => { encode(): Promise<{ buffer: Buffer }> };

export interface EncodingResult {
  records: number;
  microsPerRecord: number;
}

const PARTITIONS = 6;
const PER_PARTITION = 95;

async function encodeSend(value: Buffer): Promise<number> {
  const timestamp = Date.now();
  const request = ProduceRequest({
    acks: -1,
    timeout: 30_000,
    compression: 0,
    topicData: [
      {
        topic: 'ledger.events.v1',
        partitions: Array.from({ length: PARTITIONS }, (_, partition) => ({
          partition,
          messages: Array.from({ length: PER_PARTITION }, (_, i) => ({ key: `acct-${partition}-${i}`, value, timestamp, headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } })),
        })),
      },
    ],
  });
  return (await request.encode()).buffer.length;
}

export async function measureRecordEncoding(): Promise<EncodingResult> {
  const value = Buffer.from('x'.repeat(880));
  const records = PARTITIONS * PER_PARTITION;
  for (let i = 0; i < 30; i += 1) await encodeSend(value);
  let sends = 0;
  const start = performance.now();
  while (performance.now() - start < 3_000) {
    await encodeSend(value);
    sends += 1;
  }
  return { records, microsPerRecord: ((performance.now() - start) * 1000) / (sends * records) };
}
