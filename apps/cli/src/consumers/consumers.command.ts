import { withAdmin } from '@tally/kafka';
import { Command, Option } from 'commander';
import { kafkaOffset, nonNegativeInt } from '../cli-arguments.parser';
import type { CliContext } from '../cli-context.provider';
import { partitionRanges, type PartitionRange } from '../dead-letters/dead-letter.client';
import { json, print, table } from '../output.view';
import { setStoredOffset, storedOffsets, type StoredOffset } from './consumer-offsets.query';

/** `tally consumers lag|set-offset`: the services' consumer groups, by the offsets they store in PostgreSQL. */
export function consumersCommand(context: CliContext): Command {
  const command = new Command('consumers').description(
    "the services' Kafka consumer groups: each stores the offset of the last message it applied in PostgreSQL (<schema>.kafka_consumer_offsets, " +
      'in the transaction of its effects); Kafka\'s own committed offset only says where fetching resumes',
  );

  command
    .command('lag')
    .description('per group and partition: the stored offset, the topic\'s high watermark and the lag between them (messages not applied yet), from every schema in OFFSETS_SCHEMAS')
    .option('--group <groupId>', 'only this consumer group')
    .option('--json', 'as JSON')
    .addHelpText('after', '\nExample:\n  npm run tally -- consumers lag\n  OFFSETS_SCHEMAS=ledger npm run tally -- consumers lag --group ledger-projections --json')
    .action(async (options: { group?: string; json?: boolean }) => {
      const all = await storedOffsets(context.pool, context.config.OFFSETS_SCHEMAS);
      const stored = all.filter((row) => !options.group || row.groupId === options.group);
      // A mistyped group matched nothing: an empty table and exit 0 read as "no lag" in a script or a runbook.
      if (options.group && stored.length === 0) {
        const groups = [...new Set(all.map((row) => row.groupId))].sort();
        throw new Error(
          `group ${options.group} stored no offset in ${context.config.OFFSETS_SCHEMAS.join(', ')}; groups that did: ${groups.length > 0 ? groups.join(', ') : '(none)'}`,
        );
      }
      const highs = new Map<string, Map<number, PartitionRange>>();
      // A topic that is gone (a test's, a renamed one) shows no watermark; any other failure to ask Kafka (unreachable,
      // refused credentials or ACLs) fails the command rather than print a table of unknown lags.
      const topics = new Set(await withAdmin(context.kafka, (admin) => admin.listTopics()));
      for (const topic of new Set(stored.map((row) => row.topic))) {
        highs.set(topic, topics.has(topic) ? new Map((await partitionRanges(context.kafka, topic)).map((range) => [range.partition, range])) : new Map());
      }
      const rows = withUnstoredPartitions(stored, highs).map((row) => {
        const range = highs.get(row.topic)?.get(row.partition);
        // The next message to apply is committed + 1 (the log start when none is stored), or the log start if older
        // messages were deleted (retention).
        const next = range ? max(BigInt(row.committedOffset ?? -1) + 1n, BigInt(range.low)) : undefined;
        return {
          schema: row.schema,
          group: row.groupId,
          topic: row.topic,
          partition: row.partition,
          applied: row.committedOffset,
          high: range?.high ?? null,
          lag: range && next !== undefined ? (BigInt(range.high) - next).toString() : null,
          updatedAt: row.updatedAt?.toISOString() ?? null,
        };
      });
      print(options.json ? json(rows) : table(rows));
    });

  command
    .command('set-offset')
    .description(
      'move a group\'s stored offset of one partition, in PostgreSQL and in Kafka, so its consumers resume at --offset (re-reading or skipping messages). ' +
        'Refused while the group has live members: stop its consumers first. Re-read messages are applied once only (consumers skip what they applied, by message id)',
    )
    .requiredOption('--group <groupId>', 'the consumer group')
    .requiredOption('--topic <topic>', 'the topic')
    .requiredOption('--partition <partition>', 'the partition', nonNegativeInt)
    .addOption(new Option('--offset <offset>', 'the next offset to apply (the stored last-applied offset becomes offset - 1)').argParser(kafkaOffset))
    .option('--to-end', 'resume at the high watermark: skip everything not applied yet')
    .option('--to-start', 'resume at the log start: re-read everything the broker still has')
    .option('--schema <schema>', 'the schema whose kafka_consumer_offsets holds the group (default: the one of OFFSETS_SCHEMAS that has it)')
    .option('--dry-run', 'show the change, make none')
    .addHelpText('after', '\nExample (stop the group\'s consumers first, e.g. the ledger\'s projection workers):\n  npm run tally -- consumers set-offset --group ledger-projections --topic ledger.events.v1 --partition 0 --offset 1200 --dry-run')
    .action(async (options: { group: string; topic: string; partition: number; offset?: string; toEnd?: boolean; toStart?: boolean; schema?: string; dryRun?: boolean }) => {
      if ([options.offset !== undefined, options.toEnd, options.toStart].filter(Boolean).length !== 1) throw new Error('give exactly one of --offset, --to-end, --to-start');
      const { pool, kafka, config } = context;
      const stored = (await storedOffsets(pool, options.schema ? [options.schema] : config.OFFSETS_SCHEMAS)).filter(
        (row) => row.groupId === options.group && row.topic === options.topic,
      );
      const schema = options.schema ?? stored[0]?.schema;
      // Only a group that stored offsets of the topic in that schema: a mistyped group would get new Kafka offsets and a
      // stray row, and the wrong schema would leave the real group's stored offset where it was (both reported "done").
      if (!schema || stored.length === 0) {
        throw new Error(
          `group ${options.group} stored no offset of ${options.topic} in ${options.schema ?? config.OFFSETS_SCHEMAS.join(', ')}: ` +
            'check --group, --topic and --schema against `consumers lag`',
        );
      }
      const range = (await partitionRanges(kafka, options.topic)).find((r) => r.partition === options.partition);
      if (!range) throw new Error(`${options.topic} has no partition ${options.partition}`);
      const next = options.toEnd ? range.high : options.toStart ? range.low : (options.offset as string);
      if (BigInt(next) > BigInt(range.high)) throw new Error(`offset ${next} is past the high watermark ${range.high} of ${options.topic}[${options.partition}]`);
      // Before the log's start (moved by retention), the messages in between are not there to apply: the consumer would
      // report them as deleted before they were applied (TallyConsumerLostMessages), whether or not they were.
      if (BigInt(next) < BigInt(range.low)) {
        throw new Error(`offset ${next} is before the log start ${range.low} of ${options.topic}[${options.partition}] (deleted by retention): use --to-start or an offset from ${range.low}`);
      }
      const group = await withAdmin(kafka, async (admin) => (await admin.describeGroups([options.group])).groups[0]);
      const live = group && group.members.length > 0;
      const current = stored.find((row) => row.partition === options.partition)?.committedOffset ?? '(none)';
      print(`${schema}: group ${options.group} ${options.topic}[${options.partition}]: last applied ${current} → ${BigInt(next) - 1n} (resumes at ${next}; log ${range.low}..${range.high})`);
      if (live) {
        process.stderr.write(`refused: group ${options.group} has ${group.members.length} live members (${group.state}); stop its consumers first\n`);
        process.exitCode = 1;
        return;
      }
      if (options.dryRun) {
        print('dry run: nothing changed');
        return;
      }
      // Kafka first: a consumer resumes fetching at Kafka's offset (or back at PostgreSQL's, should that be behind it), then
      // skips what PostgreSQL says it applied; so a failed database write leaves the consumer where it stood.
      await withAdmin(kafka, (admin) => admin.setOffsets({ groupId: options.group, topic: options.topic, partitions: [{ partition: options.partition, offset: next }] }));
      await setStoredOffset(pool, { schema, groupId: options.group, topic: options.topic, partition: options.partition }, (BigInt(next) - 1n).toString());
      print('done');
    });
  return command;
}

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);

/** A partition of a group's topic and what its consumer stored of it (nothing yet: null). */
type LagSource = Omit<StoredOffset, 'committedOffset' | 'updatedAt'> & { committedOffset: string | null; updatedAt: Date | null };

/**
 * The stored offsets, and for each group's topic its partitions with none stored (applied null): a consumer stores
 * a partition's row with the first batch it applies there, so a partition it has applied nothing of yet (no traffic,
 * or stuck on its very first message, whose failing batch rolls the row back) would be missing from the table.
 */
function withUnstoredPartitions(stored: StoredOffset[], highs: Map<string, Map<number, PartitionRange>>): LagSource[] {
  const rows: LagSource[] = [...stored];
  const seen = new Set(stored.map((row) => `${row.schema}\u0000${row.groupId}\u0000${row.topic}\u0000${row.partition}`));
  const groupTopics = new Map(stored.map((row) => [`${row.schema}\u0000${row.groupId}\u0000${row.topic}`, row]));
  for (const { schema, groupId, topic } of groupTopics.values()) {
    for (const partition of highs.get(topic)?.keys() ?? []) {
      if (!seen.has(`${schema}\u0000${groupId}\u0000${topic}\u0000${partition}`)) rows.push({ schema, groupId, topic, partition, committedOffset: null, updatedAt: null });
    }
  }
  const text = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0); // code-unit order, as the stored rows come
  return rows.sort((a, b) => text(a.schema, b.schema) || text(a.groupId, b.groupId) || text(a.topic, b.topic) || a.partition - b.partition);
}
