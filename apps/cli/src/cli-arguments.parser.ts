import { InvalidArgumentError } from 'commander';
import { INSTANT_RULE, parseInstant } from '@tally/instant';

/** Option and argument parsers: commander reports the refusal with the option's name and exits with code 1. */

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${value} is not a positive integer`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${value} is not a non-negative integer`);
  return n;
}

/** A Kafka offset: a non-negative integer, kept as a decimal string (offsets are int64). */
export function kafkaOffset(value: string): string {
  if (!/^\d{1,19}$/.test(value)) throw new InvalidArgumentError(`${value} is not a Kafka offset`);
  return BigInt(value).toString();
}

/** An ISO-8601 instant with a date, a time and an offset (`2026-11-30T12:00:00Z`; libs/instant). */
export function instant(value: string): Date {
  const at = parseInstant(value);
  if (!at) throw new InvalidArgumentError(`${value} is not an instant: it ${INSTANT_RULE}`);
  return at;
}
