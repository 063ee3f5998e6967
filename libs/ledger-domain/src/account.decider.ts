import type { AccountCommand, Ctx } from './account.commands';
import { decide } from './account.decide';
import type { AccountEvent } from './account.events';
import { type AccountState, evolve, initialState } from './account.state';

export interface Decider<State, Command, Event, Context> {
  decide(command: Command, state: State, ctx: Context): Event[];
  evolve(state: State, event: Event): State;
  readonly initialState: State;
}

export type AccountDecider = Decider<AccountState, AccountCommand, AccountEvent, Ctx>;

export const accountDecider: AccountDecider = { decide, evolve, initialState };
