import { deepStrictEqual } from 'node:assert';
import type { Decider } from '../index';

/**
 * Given/when/then for deciders (after emmett's DeciderSpecification):
 *
 *   spec(accountDecider, { now }).given([...events]).when(command, ctx?).then([...events])
 *   spec(accountDecider, { now }).given([...events]).when(command).thenThrows('INVALID_AMOUNT')
 *
 * Framework-free (node:assert), so any test runner can use it. Events are compared strictly: an optional
 * field must be absent, not `undefined`.
 */
export type SpecDecider<State, Command, Event, Context> = Decider<State, Command, Event, Context>;

export interface When<State, Event> {
  /** The decided events equal `expected` (order included). Returns them and the state they lead to. */
  then(expected: readonly Event[]): { events: Event[]; state: State };
  /** `decide` throws an error whose `code` is `code` (and whose `details` include `details`, if given). */
  thenThrows(code: string, details?: Readonly<Record<string, unknown>>): unknown;
  /** The decided events, for assertions `then` cannot express. */
  events(): Event[];
}

export interface Given<State, Command, Event, Context> {
  when(command: Command, ctx?: Context): When<State, Event>;
  /** The state after the given events. */
  state(): State;
}

export function spec<State, Command, Event, Context>(
  decider: SpecDecider<State, Command, Event, Context>,
  defaultCtx?: Context,
) {
  return {
    given(history: readonly Event[] = []): Given<State, Command, Event, Context> {
      const state = (): State => history.reduce(decider.evolve, decider.initialState);
      return {
        state,
        when(command: Command, ctx?: Context): When<State, Event> {
          const context = ctx ?? defaultCtx;
          if (context === undefined) throw new Error('spec: no ctx given to when() and no default ctx');
          const run = (): Event[] => decider.decide(command, state(), context);
          return {
            events: run,
            then(expected) {
              const events = run();
              deepStrictEqual(events, expected);
              return { events, state: events.reduce(decider.evolve, state()) };
            },
            thenThrows(code, details) {
              let events: Event[];
              try {
                events = run();
              } catch (error) {
                const actual = (error as { code?: unknown }).code;
                deepStrictEqual(actual, code, `expected error code ${code}, got ${String(actual)}: ${String(error)}`);
                if (details) {
                  const actualDetails = (error as { details?: Record<string, unknown> }).details ?? {};
                  for (const [key, value] of Object.entries(details)) deepStrictEqual(actualDetails[key], value, `details.${key}`);
                }
                return error;
              }
              throw new Error(`expected ${code} to be thrown, got events ${describe(events)}`);
            },
          };
        },
      };
    },
  };
}

const describe = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
