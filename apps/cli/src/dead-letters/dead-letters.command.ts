import { DEAD_LETTER_SUFFIX, DeadLetterHeaders, FIRST_PRODUCED_AT_HEADER, KafkaProducer, REPLAY_FOR_GROUP_HEADER, earliestStamp, missingTopics, withAdmin } from '@tally/kafka';
import { Command } from 'commander';
import { kafkaOffset, nonNegativeInt } from '../cli-arguments.parser';
import type { CliContext } from '../cli-context.provider';
import { json, print, table } from '../output.view';
import { showValue } from './dead-letter-value.view';
import { DeadLetterReplays } from './dead-letter-replays.repository';
import { deadLetterTopics, forEachMessage, partitionRanges, readMessages, type StoredMessage } from './dead-letter.client';

/** A dead letter as an operator reads it: where it failed, why, and whether it was replayed. */
function describe(message: StoredMessage, replayed?: { replays: number; replayedAt: Date }) {
  const h = message.headers;
  return {
    partition: message.partition,
    offset: message.offset,
    reason: h[DeadLetterHeaders.reason] ?? null,
    source: h[DeadLetterHeaders.originalTopic] ? `${h[DeadLetterHeaders.originalTopic]}[${h[DeadLetterHeaders.originalPartition]}]@${h[DeadLetterHeaders.originalOffset]}` : null,
    group: h[DeadLetterHeaders.consumerGroup] ?? null,
    failedAt: h[DeadLetterHeaders.failedAt] ?? null,
    key: message.key,
    replayed: replayed ? `${replayed.replays}x, last ${replayed.replayedAt.toISOString()}` : 'no',
  };
}

/** The topic's messages now, from each partition's start to its end as they stand at the call: the later ones are left for another run. */
async function wholeTopic(context: CliContext, topic: string): Promise<{ partition: number; from: string; to: string }[]> {
  return (await partitionRanges(context.kafka, topic)).map(({ partition, low, high }) => ({ partition, from: low, to: high }));
}

/** Every message of `topic` to `visit`, one after the other, none kept: a dead-letter topic is kept for ever and may be long. */
async function eachOfTopic(context: CliContext, topic: string, visit: (message: StoredMessage) => void | Promise<void>): Promise<void> {
  await forEachMessage(context.kafka, topic, await wholeTopic(context, topic), visit);
}

async function replays(context: CliContext): Promise<DeadLetterReplays> {
  const repository = new DeadLetterReplays(context.pool, context.config.CLI_SCHEMA);
  await repository.ensureTable();
  return repository;
}

/** Rows `list --topic` prints at most by default: the topic is kept for ever and may hold millions. */
const LIST_LIMIT = 1_000;

/** `tally dlq list|show|replay`: the dead-letter topics (`*.dlq.v1`). */
export function deadLettersCommand(context: CliContext): Command {
  const command = new Command('dlq').description(`dead-letter topics (*${DEAD_LETTER_SUFFIX}): what failed and why (headers), and replaying it to its source topic after a fix`);

  command
    .command('list')
    .description('every dead-letter topic with its message count by reason; with --topic, each message of that topic (reason, source, group, time, key, replayed)')
    .option('--topic <topic>', 'list the messages of this dead-letter topic')
    .option('--limit <n>', `with --topic: the first n messages (${LIST_LIMIT} by default; the rest are counted)`, nonNegativeInt)
    .option('--json', 'as JSON')
    .addHelpText('after', '\nExample:\n  npm run tally -- dlq list\n  npm run tally -- dlq list --topic usage.events.dlq.v1')
    .action(async (options: { topic?: string; json?: boolean; limit?: number }) => {
      const replayed = await replays(context);
      if (options.topic) {
        const done = await replayed.forTopic(options.topic);
        const limit = options.limit ?? LIST_LIMIT;
        const rows: ReturnType<typeof describe>[] = [];
        let more = 0;
        await eachOfTopic(context, options.topic, (message) => {
          if (rows.length < limit) rows.push(describe(message, done.of(message)));
          else more += 1;
        });
        print(options.json ? json(rows) : table(rows));
        if (more > 0) process.stderr.write(`… and ${more} more (--limit, or dlq list for the counts by reason)\n`);
        return;
      }
      const rows = [];
      for (const topic of await deadLetterTopics(context.kafka)) {
        const done = await replayed.forTopic(topic);
        const reasons = new Map<string, number>();
        const counts = { messages: 0, replayed: 0 };
        // Counted as they are read, none kept.
        await eachOfTopic(context, topic, (message) => {
          const reason = message.headers[DeadLetterHeaders.reason] ?? '(none)';
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          counts.messages += 1;
          if (done.of(message)) counts.replayed += 1;
        });
        rows.push({ topic, ...counts, reasons: Object.fromEntries(reasons) });
      }
      print(options.json ? json(rows) : table(rows));
    });

  command
    .command('show')
    .description('one dead-lettered message: its headers (reason, details, source topic, partition and offset), key and value')
    .argument('<topic>', 'the dead-letter topic')
    .argument('<partition>', 'its partition', nonNegativeInt)
    .argument('<offset>', 'its offset', kafkaOffset)
    .addHelpText('after', '\nPrinted as JSON (the value parsed when it is JSON; an integer beyond 2^53 as a string of its exact digits).\n\nExample:\n  npm run tally -- dlq show usage.events.dlq.v1 0 12')
    .action(async (topic: string, partition: number, offset: string) => {
      const [message] = await readMessages(context.kafka, topic, [{ partition, from: offset, to: (BigInt(offset) + 1n).toString() }]);
      if (!message) throw new Error(`no message at ${topic}[${partition}]@${offset}`);
      const done = (await (await replays(context)).forTopic(topic)).of(message);
      const value = message.value?.toString() ?? null;
      const shown = { ...describe(message, done), headers: message.headers, value: showValue(value) };
      print(json(shown));
    });

  command
    .command('replay')
    .description(
      'send dead letters back to their source topic (header x-original-topic) after a fix, with their key, value and own headers: ' +
        'the message keeps its id, so one already applied is skipped by its consumer (exactly-once still). Each replay is recorded in ' +
        'CLI_SCHEMA.dead_letter_replays; a recorded one is not replayed again unless --again',
    )
    .argument('<topic>', 'the dead-letter topic')
    .option('--partition <partition>', 'with --offset: replay this one message', nonNegativeInt)
    .option('--offset <offset>', 'with --partition: replay this one message', kafkaOffset)
    .option('--all', 'replay every message of the topic not replayed yet')
    .option('--reason <code>', 'with --all: only messages dead-lettered with this reason (x-dead-letter-reason)')
    .option('--again', 'replay even messages already recorded as replayed')
    .option('--for-group <group>', 'the consumer group that is to apply the replay (by default the one that dead-lettered each message, x-consumer-group); the others pass over it')
    .option('--dry-run', 'list what would be replayed, send nothing')
    .addHelpText('after', '\nExamples:\n  npm run tally -- dlq replay usage.events.dlq.v1 --partition 0 --offset 12\n  npm run tally -- dlq replay usage.events.dlq.v1 --all --reason UNKNOWN_MODEL --dry-run')
    .action(async (topic: string, options: { partition?: number; offset?: string; all?: boolean; reason?: string; again?: boolean; dryRun?: boolean; forGroup?: string }) => {
      const one = options.partition !== undefined && options.offset !== undefined;
      if (one === Boolean(options.all) || (!one && (options.partition !== undefined || options.offset !== undefined))) {
        throw new Error('name one message with --partition and --offset, or --all');
      }
      if (options.reason !== undefined && !options.all) throw new Error('--reason filters --all; a message named by --partition and --offset is replayed whatever its reason');
      const replayed = await replays(context);
      const done = await replayed.forTopic(topic);
      // One message, or every message of the topic as it stands now, read twice and kept neither time (a dead-letter
      // topic is kept for ever and may hold millions): a first pass checks what a replay needs, so nothing is sent
      // unless all of it can be; the second sends.
      const ranges = one
        ? [{ partition: options.partition as number, from: options.offset as string, to: (BigInt(options.offset as string) + 1n).toString() }]
        : await wholeTopic(context, topic);
      const each = (visit: (message: StoredMessage) => void | Promise<void>) => forEachMessage(context.kafka, topic, ranges, visit);
      const chosen = (message: StoredMessage): 'replay' | 'skip' | undefined =>
        options.reason !== undefined && message.headers[DeadLetterHeaders.reason] !== options.reason ? undefined : !options.again && done.of(message) ? 'skip' : 'replay';
      const forGroupOf = (message: StoredMessage) => options.forGroup ?? message.headers[DeadLetterHeaders.consumerGroup];

      const seen = { messages: 0, selected: 0, reasons: new Set<string>(), targets: new Set<string>(), groups: new Set<string>(), failedBy: new Set<string>() };
      await each((message) => {
        seen.messages += 1;
        seen.reasons.add(message.headers[DeadLetterHeaders.reason] ?? '(none)');
        const choice = chosen(message);
        if (choice) seen.selected += 1;
        if (choice !== 'replay') return;
        const target = message.headers[DeadLetterHeaders.originalTopic];
        if (!target) throw new Error(`${topic}[${message.partition}]@${message.offset} has no ${DeadLetterHeaders.originalTopic} header: not a Tally dead letter; nothing replayed`);
        seen.targets.add(target);
        const group = forGroupOf(message);
        if (group) seen.groups.add(group);
        seen.failedBy.add(message.headers[DeadLetterHeaders.consumerGroup] ?? '(none)');
      });
      if (one && seen.messages === 0) throw new Error(`no message at ${topic}[${options.partition}]@${options.offset}`);
      if (options.reason !== undefined && seen.selected === 0) {
        // A mistyped reason replays nothing: said, and a failure, rather than "replayed 0" read as done.
        const present = [...seen.reasons].sort();
        throw new Error(`no dead letter has reason ${options.reason} (reasons: ${present.join(', ') || 'none, the topic is empty'}): nothing replayed`);
      }
      // --for-group names the one group to apply the replays: letters that other groups failed (ledger.events.dlq.v1
      // holds the projection's and notification's) would be passed over by theirs and recorded as replayed.
      if (options.forGroup !== undefined && seen.failedBy.size > 1) {
        throw new Error(`--for-group ${options.forGroup}: the dead letters chosen were failed by ${[...seen.failedBy].sort().join(', ')}; replay each group's with --reason or one at a time: nothing replayed`);
      }
      // Only to topics that exist: a send to one deleted since (a product's topic retired) would have the broker create
      // it afresh, a topic nobody reads, and the replay be recorded as done while the usage is never applied.
      if (seen.targets.size > 0) {
        const { missing, saying } = await withAdmin(context.kafka, (admin) => missingTopics(admin, [...seen.targets]));
        if (missing.length > 0) throw new Error(`${saying} (deleted since it was dead-lettered?): nothing replayed; replay the others by --partition/--offset`);
      }
      // Each replay is applied by the group that dead-lettered it alone (x-replay-for-group): a group Kafka does not
      // know (renamed since, a typo of --for-group) would apply it nowhere, so it is refused.
      if (seen.groups.size > 0) {
        const described = await withAdmin(context.kafka, (admin) => admin.describeGroups([...seen.groups]));
        const unknown = described.groups.filter((group) => group.state === 'Dead').map((group) => group.groupId);
        if (unknown.length > 0) {
          throw new Error(`consumer group ${unknown.join(', ')}, which would apply the replay, is not known to Kafka (renamed since it dead-lettered them?): nothing replayed; name the group that reads ${[...seen.targets].join(', ')} with --for-group`);
        }
      }

      const counts = { replayed: 0, skipped: 0 };
      const producer = options.dryRun || seen.targets.size === 0 ? undefined : new KafkaProducer(context.kafka);
      try {
        await each(async (message) => {
          const choice = chosen(message);
          if (choice === 'skip') {
            counts.skipped += 1;
            print(`skipped ${topic}[${message.partition}]@${message.offset}: already replayed (use --again to replay it anyway)`);
          }
          if (choice !== 'replay') return;
          const target = message.headers[DeadLetterHeaders.originalTopic] as string;
          const where = `${topic}[${message.partition}]@${message.offset} → ${target}`;
          counts.replayed += 1;
          if (!producer) {
            print(`would replay ${where} (reason ${message.headers[DeadLetterHeaders.reason] ?? 'none'})`);
            return;
          }
          // The message as it was first produced: its own headers as received (a binary value, a header without one), without
          // the dead-letter ones, plus where it was replayed from.
          const headers = Object.fromEntries(Object.entries(message.headersAsSent).filter(([name]) => !Object.values<string>(DeadLetterHeaders).includes(name)));
          headers['x-replayed-from'] = `${topic}/${message.partition}/${message.offset}`;
          // A replay is a new record, stamped now: when the message was first produced goes with it, kept through later
          // replays (a usage refused as dated ahead must not pass because the replay came later).
          const firstProduced = earliestStamp(message.headers[FIRST_PRODUCED_AT_HEADER], message.headers[DeadLetterHeaders.originalTimestamp]);
          if (firstProduced !== undefined) headers[FIRST_PRODUCED_AT_HEADER] = firstProduced;
          // Only the group that dead-lettered it applies it again: the topic's other groups applied it the first time.
          const forGroup = forGroupOf(message);
          if (forGroup !== undefined) headers[REPLAY_FOR_GROUP_HEADER] = forGroup;
          const [sent] = await producer.send(target, [{ key: message.key ?? '', value: message.value ?? Buffer.alloc(0), headers }]);
          await replayed.record({
            dlqTopic: topic, partition: message.partition, offset: message.offset, dlqTimestamp: message.timestamp, targetTopic: target,
            targetPartition: sent?.partition ?? null, targetOffset: sent?.baseOffset ?? null, reason: message.headers[DeadLetterHeaders.reason] ?? null,
          });
          print(`replayed ${where}[${sent?.partition}]@${sent?.baseOffset}`);
        });
      } finally {
        await producer?.disconnect();
      }
      print(`${options.dryRun ? 'would replay' : 'replayed'} ${counts.replayed}, skipped ${counts.skipped} already replayed`);
    });
  return command;
}

