import { RateLimiter } from './rate-limit.model';
import { parseRateLimits } from './rate-limits.config';
import { CommonConfig } from '../config/common.config';
import { loadConfig } from '../config/env-config.parser';

describe('RateLimiter (token buckets per caller)', () => {
  let now = 0;
  const limiter = () => new RateLimiter(() => ({ perSecond: 2, burst: 3 }), () => now);

  beforeEach(() => (now = 0));

  it('accepts a burst, refuses the next with the seconds until a token, and refills at the rate', () => {
    const buckets = limiter();
    expect([1, 2, 3].map(() => buckets.take('key:a').allowed)).toEqual([true, true, true]);
    const refused = buckets.take('key:a');
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    now += 500; // half a second at 2/s: one token
    expect(buckets.take('key:a').allowed).toBe(true);
    expect(buckets.take('key:a').allowed).toBe(false);
  });

  it('keeps callers apart', () => {
    const buckets = limiter();
    for (let i = 0; i < 3; i++) buckets.take('key:a');
    expect(buckets.take('key:a').allowed).toBe(false);
    expect(buckets.take('key:b')).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('never holds more than the burst after a long quiet spell', () => {
    const buckets = limiter();
    buckets.take('key:a');
    now += 3_600_000;
    expect(buckets.take('key:a').remaining).toBe(2);
  });

  // Callers are remembered per client address without a key: a flood from many addresses (an IPv6 range) made every
  // new one scan all the buckets once more than 10,000 were remembered and none had refilled yet, freeing nothing:
  // work quadratic in the addresses, and memory without a bound.
  it('given a flood of new callers none of whose buckets refilled, then it sweeps now and then, not for each, and remembers a bounded number', () => {
    const buckets = limiter();
    for (let i = 0; i < 30_000; i++) buckets.take(`ip:${i}`);
    expect(buckets.sweeps).toBeLessThanOrEqual(3);
    for (let i = 30_000; i < 260_000; i++) buckets.take(`ip:${i}`);
    expect(buckets.size).toBeLessThanOrEqual(200_000);
    expect(buckets.sweeps).toBeLessThanOrEqual(10);
    // The callers still remembered are the most recent: one of them is still limited, the oldest start afresh.
    for (let i = 0; i < 2; i++) buckets.take('ip:259999');
    expect(buckets.take('ip:259999').allowed).toBe(false);
  });

  it('forgets, at a sweep, the callers whose buckets refilled', () => {
    const buckets = limiter();
    for (let i = 0; i < 10_000; i++) buckets.take(`ip:${i}`);
    now += 2_000; // every bucket full again
    buckets.take('ip:new');
    expect(buckets.size).toBe(1);
  });

  it('says how long to wait at a slow rate (one request every 10 s)', () => {
    const slow = new RateLimiter(() => ({ perSecond: 0.1, burst: 1 }), () => now);
    slow.take('ip:1');
    expect(slow.take('ip:1')).toMatchObject({ allowed: false, retryAfterSeconds: 10 });
    now += 4_000;
    expect(slow.take('ip:1')).toMatchObject({ allowed: false, retryAfterSeconds: 6 });
  });
});

describe('rate limit configuration', () => {
  const env = { PORT: '0', DATABASE_SCHEMA: 'x' };

  it('parses per-key overrides and refuses bad ones, naming the entry', () => {
    expect(parseRateLimits('{"chat":{"perSecond":5,"burst":10}}').get('chat')).toEqual({ perSecond: 5, burst: 10 });
    expect(() => parseRateLimits('{"chat":{"perSecond":0,"burst":10}}')).toThrow(/RATE_LIMITS\.chat\.perSecond/);
    expect(() => parseRateLimits('[]')).toThrow(/RATE_LIMITS/);
    expect(() => loadConfig(CommonConfig, { ...env, RATE_LIMITS: '{"chat":{"burst":10}}' })).toThrow(/RATE_LIMITS.*chat\.perSecond/);
  });

  it('gives keys their override or the default, and addresses the anonymous default', () => {
    const config = loadConfig(CommonConfig, { ...env, RATE_LIMIT_PER_SECOND: '7', RATE_LIMITS: '{"chat":{"perSecond":50,"burst":60}}' });
    const limitOf = config.rateLimitOf();
    expect(limitOf('key:chat')).toEqual({ perSecond: 50, burst: 60 });
    expect(limitOf('key:other')).toEqual({ perSecond: 7, burst: 200 });
    expect(limitOf('ip:127.0.0.1')).toEqual({ perSecond: 5, burst: 20 });
  });

  it('serves /docs publicly by default and behind a key in production', () => {
    expect(loadConfig(CommonConfig, env).docsAccess()).toBe('public');
    expect(loadConfig(CommonConfig, { ...env, NODE_ENV: 'production' }).docsAccess()).toBe('key');
    expect(loadConfig(CommonConfig, { ...env, NODE_ENV: 'production', DOCS_ACCESS: 'public' }).docsAccess()).toBe('public');
    expect(() => loadConfig(CommonConfig, { ...env, DOCS_ACCESS: 'open' })).toThrow(/DOCS_ACCESS/);
  });
});
