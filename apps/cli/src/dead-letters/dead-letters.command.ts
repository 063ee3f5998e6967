import { DEAD_LETTER_SUFFIX, DeadLetterHeaders, FIRST_PRODUCED_AT_HEADER, KafkaProducer, REPLAY_FOR_GROUP_HEADER, missingTopics, withAdmin } from '@tally/kafka';
import { Command } from 'commander';
import { kafkaOffset, nonNegativeInt } from '../cli-arguments.parser';
import type { CliContext } from '../cli-context.provider';
import { json, print, table } from '../output.view';
import { showValue } from './dead-letter-value.view';
import { DeadLetterReplays } from './dead-letter-replays.repository';
import { deadLetterTopics, partitionRanges, readMessages, type StoredMessage } from './dead-letter.client';

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

async function readAll(context: CliContext, topic: string): Promise<StoredMessage[]> {
  const ranges = await partitionRanges(context.kafka, topic);
  return readMessages(context.kafka, topic, ranges.map(({ partition, low, high }) => ({ partition, from: low, to: high })));
}

async function replays(context: CliContext): Promise<DeadLetterReplays> {
  const repository = new DeadLetterReplays(context.pool, context.config.CLI_SCHEMA);
  await repository.ensureTable();
  return repository;
}

/** `tally dlq list|show|replay`: the dead-letter topics (`*.dlq.v1`). */
export function deadLettersCommand(context: CliContext): Command {
  const command = new Command('dlq').description(`dead-letter topics (*${DEAD_LETTER_SUFFIX}): what failed and why (headers), and replaying it to its source topic after a fix`);

  command
    .command('list')
    .description('every dead-letter topic with its message count by reason; with --topic, each message of that topic (reason, source, group, time, key, replayed)')
    .option('--topic <topic>', 'list the messages of this dead-letter topic')
    .option('--json', 'as JSON')
    .addHelpText('after', '\nExample:\n  npm run tally -- dlq list\n  npm run tally -- dlq list --topic usage.events.dlq.v1')
    .action(async (options: { topic?: string; json?: boolean }) => {
      const replayed = await replays(context);
      if (options.topic) {
        const done = await replayed.forTopic(options.topic);
        const rows = (await readAll(context, options.topic)).map((message) => describe(message, done.of(message)));
        print(options.json ? json(rows) : table(rows));
        return;
      }
      const rows = [];
      for (const topic of await deadLetterTopics(context.kafka)) {
        const messages = await readAll(context, topic);
        const done = await replayed.forTopic(topic);
        const reasons = new Map<string, number>();
        for (const message of messages) {
          const reason = message.headers[DeadLetterHeaders.reason] ?? '(none)';
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        }
        rows.push({ topic, messages: messages.length, replayed: messages.filter((m) => done.of(m)).length, reasons: Object.fromEntries(reasons) });
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
      const candidates = one
        ? await readMessages(context.kafka, topic, [{ partition: options.partition as number, from: options.offset as string, to: (BigInt(options.offset as string) + 1n).toString() }])
        : await readAll(context, topic);
      if (one && candidates.length === 0) throw new Error(`no message at ${topic}[${options.partition}]@${options.offset}`);
      const selected = candidates.filter((m) => !options.reason || m.headers[DeadLetterHeaders.reason] === options.reason);
      if (options.reason !== undefined && selected.length === 0) {
        // A mistyped reason replays nothing: said, and a failure, rather than "replayed 0" read as done.
        const present = [...new Set(candidates.map((m) => m.headers[DeadLetterHeaders.reason] ?? '(none)'))].sort();
        throw new Error(`no dead letter has reason ${options.reason} (reasons: ${present.join(', ') || 'none, the topic is empty'}): nothing replayed`);
      }
      const skipped = options.again ? [] : selected.filter((m) => done.of(m));
      const toReplay = selected.filter((m) => !skipped.includes(m));
      for (const message of skipped) print(`skipped ${topic}[${message.partition}]@${message.offset}: already replayed (use --again to replay it anyway)`);
      // Only to topics that exist: a send to one deleted since (a product's topic retired) would have the broker create
      // it afresh, a topic nobody reads, and the replay be recorded as done while the usage is never applied.
      const targets = toReplay.map((message) => message.headers[DeadLetterHeaders.originalTopic]).filter((target): target is string => Boolean(target));
      if (targets.length > 0) {
        const { missing, saying } = await withAdmin(context.kafka, (admin) => missingTopics(admin, targets));
        if (missing.length > 0) throw new Error(`${saying} (deleted since it was dead-lettered?): nothing replayed; replay the others by --partition/--offset`);
      }
      // Each replay is applied by the group that dead-lettered it alone (x-replay-for-group): a group Kafka does not
      // know (renamed since, a typo of --for-group) would apply it nowhere, so it is refused.
      const forGroups = [...new Set(toReplay.map((message) => options.forGroup ?? message.headers[DeadLetterHeaders.consumerGroup]).filter((group): group is string => Boolean(group)))];
      if (forGroups.length > 0) {
        const described = await withAdmin(context.kafka, (admin) => admin.describeGroups(forGroups));
        const unknown = described.groups.filter((group) => group.state === 'Dead').map((group) => group.groupId);
        if (unknown.length > 0) {
          throw new Error(`consumer group ${unknown.join(', ')}, which would apply the replay, is not known to Kafka (renamed since it dead-lettered them?): nothing replayed; name the group that reads ${[...new Set(targets)].join(', ')} with --for-group`);
        }
      }
      const producer = options.dryRun || toReplay.length === 0 ? undefined : new KafkaProducer(context.kafka);
      try {
        for (const message of toReplay) {
          const target = message.headers[DeadLetterHeaders.originalTopic];
          if (!target) throw new Error(`${topic}[${message.partition}]@${message.offset} has no ${DeadLetterHeaders.originalTopic} header: not a Tally dead letter`);
          const where = `${topic}[${message.partition}]@${message.offset} → ${target}`;
          if (!producer) {
            print(`would replay ${where} (reason ${message.headers[DeadLetterHeaders.reason] ?? 'none'})`);
            continue;
          }
          // The message as it was first produced: its own headers, without the dead-letter ones, plus where it was replayed from.
          const headers = Object.fromEntries(Object.entries(message.headers).filter(([name]) => !Object.values<string>(DeadLetterHeaders).includes(name)));
          headers['x-replayed-from'] = `${topic}/${message.partition}/${message.offset}`;
          // A replay is a new record, stamped now: when the message was first produced goes with it, kept through later
          // replays (a usage refused as dated ahead must not pass because the replay came later).
          const firstProduced = headers[FIRST_PRODUCED_AT_HEADER] ?? message.headers[DeadLetterHeaders.originalTimestamp];
          if (firstProduced !== undefined) headers[FIRST_PRODUCED_AT_HEADER] = firstProduced;
          // Only the group that dead-lettered it applies it again: the topic's other groups applied it the first time.
          const forGroup = options.forGroup ?? message.headers[DeadLetterHeaders.consumerGroup];
          if (forGroup !== undefined) headers[REPLAY_FOR_GROUP_HEADER] = forGroup;
          const [sent] = await producer.send(target, [{ key: message.key ?? '', value: message.value ?? Buffer.alloc(0), headers }]);
          await replayed.record({
            dlqTopic: topic, partition: message.partition, offset: message.offset, dlqTimestamp: message.timestamp, targetTopic: target,
            targetPartition: sent?.partition ?? null, targetOffset: sent?.baseOffset ?? null, reason: message.headers[DeadLetterHeaders.reason] ?? null,
          });
          print(`replayed ${where}[${sent?.partition}]@${sent?.baseOffset}`);
        }
      } finally {
        await producer?.disconnect();
      }
      print(`${options.dryRun ? 'would replay' : 'replayed'} ${toReplay.length}, skipped ${skipped.length} already replayed`);
    });
  return command;
}

