import { Transform, Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { loadConfig } from '@tally/shared';

/**
 * The fault run's knobs, read from the environment and validated (a bad value stops the run before anything
 * starts, naming the variable). Unset sizes follow CHAOS_SHORT: the CI size runs in a few minutes, the full size
 * is the README's scale run.
 */
export class ChaosEnv {
  /** Seeds the workload and the fault schedule; a random one when unset (it is printed either way). */
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) @Max(2 ** 31 - 1)
  CHAOS_SEED?: number;

  /** `1`: the CI size (a few minutes, a kill -9 of the ledger and a broker restart at least). */
  @IsIn(['0', '1'])
  CHAOS_SHORT = '0';

  /** Distinct usage events (duplicates and redeliveries come on top). */
  @IsOptional() @Type(() => Number) @IsInt() @Min(100) @Max(5_000_000)
  CHAOS_EVENTS?: number;

  @IsOptional() @Type(() => Number) @IsInt() @Min(2) @Max(100_000)
  CHAOS_ACCOUNTS?: number;

  @IsOptional() @Type(() => Number) @IsInt() @Min(2) @Max(200)
  CHAOS_FAULTS?: number;

  /** Hard overall deadline: the run stops, cleans up and fails when it is reached. */
  @IsOptional() @Type(() => Number) @IsInt() @Min(60) @Max(86_400)
  CHAOS_DEADLINE_SECONDS?: number;

  /** The stated bound of invariant 6: every consumer's lag back to 0 within this long after the last fault. */
  @IsOptional() @Type(() => Number) @IsInt() @Min(5) @Max(3_600)
  CHAOS_LAG_BOUND_SECONDS?: number;

  /** Keep the services' logs in .cache/chaos/<seed>/ after a passing run too (a failing run always keeps them). */
  @Transform(({ value }) => value === '1' || value === true)
  CHAOS_KEEP_LOGS = false;
}

/** The run's resolved settings. */
export interface ChaosSettings {
  seed: number;
  short: boolean;
  events: number;
  accounts: number;
  faults: number;
  deadlineMs: number;
  lagBoundMs: number;
  /** How long PostgreSQL or the broker may answer 503 after it is back (invariant 7's documented window). */
  graceMs: number;
  /** A paused service stays stopped this long: past the consumers' 30 s Kafka session timeout. */
  pauseMs: number;
  keepLogs: boolean;
}

export function chaosSettings(env: NodeJS.ProcessEnv = process.env): ChaosSettings {
  const knobs = loadConfig(ChaosEnv, env);
  const short = knobs.CHAOS_SHORT === '1';
  return {
    seed: knobs.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31),
    short,
    events: knobs.CHAOS_EVENTS ?? (short ? 4_000 : 200_000),
    accounts: knobs.CHAOS_ACCOUNTS ?? (short ? 16 : 400),
    faults: knobs.CHAOS_FAULTS ?? (short ? 4 : 14),
    deadlineMs: (knobs.CHAOS_DEADLINE_SECONDS ?? (short ? 600 : 2_400)) * 1000,
    lagBoundMs: (knobs.CHAOS_LAG_BOUND_SECONDS ?? (short ? 60 : 180)) * 1000,
    graceMs: 15_000,
    pauseMs: 33_000,
    keepLogs: knobs.CHAOS_KEEP_LOGS,
  };
}

/** The command that replays a run. */
export function replayCommand(settings: ChaosSettings): string {
  const sizes = settings.short ? 'CHAOS_SHORT=1 ' : '';
  return `CHAOS_SEED=${settings.seed} ${sizes}CHAOS_EVENTS=${settings.events} CHAOS_ACCOUNTS=${settings.accounts} CHAOS_FAULTS=${settings.faults} npm run chaos`;
}
