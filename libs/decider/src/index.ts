/**
 * A decider (after Jérémie Chassaing's pattern, as emmett spells it): the whole behaviour of one aggregate as
 * three pure parts. `decide` turns a command and the current state into events (or refuses with a coded error),
 * `evolve` applies one event to the state, and `initialState` is where every stream starts. Both domains (the
 * account, the subscription) are deciders; their given/when/then tests share `@tally/decider/testing`.
 */
export interface Decider<State, Command, Event, Context> {
  decide(command: Command, state: State, ctx: Context): Event[];
  evolve(state: State, event: Event): State;
  readonly initialState: State;
}
