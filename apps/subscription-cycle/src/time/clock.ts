/** Where the service reads the time; tests inject a controllable clock to run a year in seconds. */
export interface Clock {
  now(): Date;
}

export const CLOCK = Symbol('CLOCK');

export const systemClock: Clock = { now: () => new Date() };
