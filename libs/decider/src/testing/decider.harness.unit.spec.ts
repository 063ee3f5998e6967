import { spec } from './decider.harness';

type Cmd = { type: 'Add'; n: number };
type Ev = { type: 'Added'; n: number };
const counter = {
  initialState: 0,
  evolve: (state: number, event: Ev) => state + event.n,
  decide: (command: Cmd, state: number, ctx: { max: number }): Ev[] => {
    if (state + command.n > ctx.max) throw Object.assign(new Error('too much'), { code: 'TOO_MUCH', details: { state } });
    return [{ type: 'Added', n: command.n }];
  },
};

describe('decider specification', () => {
  const { given } = spec(counter, { max: 10 });

  it('passes when the decided events are the expected ones, and returns the resulting state', () => {
    expect(given([{ type: 'Added', n: 2 }]).when({ type: 'Add', n: 3 }).then([{ type: 'Added', n: 3 }]).state).toBe(5);
  });

  it('fails when the events differ', () => {
    expect(() => given().when({ type: 'Add', n: 3 }).then([{ type: 'Added', n: 4 }])).toThrow();
  });

  it('checks the error code and details, and fails when nothing or something else is thrown', () => {
    given([{ type: 'Added', n: 9 }]).when({ type: 'Add', n: 3 }).thenThrows('TOO_MUCH', { state: 9 });
    expect(() => given().when({ type: 'Add', n: 3 }).thenThrows('TOO_MUCH')).toThrow(/expected TOO_MUCH/);
    expect(() => given([{ type: 'Added', n: 9 }]).when({ type: 'Add', n: 3 }).thenThrows('OTHER')).toThrow();
    expect(() => given([{ type: 'Added', n: 9 }]).when({ type: 'Add', n: 3 }, { max: 100 }).thenThrows('TOO_MUCH')).toThrow();
  });

  it('needs a ctx from when() or a default', () => {
    expect(() => spec(counter).given().when({ type: 'Add', n: 1 })).toThrow(/no ctx/);
  });
});
