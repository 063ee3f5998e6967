import type { Decider } from '@tally/decider';
import type { AccountCommand, Ctx } from './account.commands';
import { decide } from './account.decide';
import type { AccountEvent } from './account.events';
import { type AccountState, evolve, initialState } from './account.state';


export type AccountDecider = Decider<AccountState, AccountCommand, AccountEvent, Ctx>;

export const accountDecider: AccountDecider = { decide, evolve, initialState };
