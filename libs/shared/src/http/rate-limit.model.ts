/** How fast one caller may send requests: a steady rate, and how many may come at once after a quiet spell. */
export interface RateLimit {
  /** Tokens added per second (the sustained requests per second); may be fractional (0.5 = one every 2 s). */
  perSecond: number;
  /** The bucket's size: requests accepted back to back before the rate applies. */
  burst: number;
}

/** What taking one request from a caller's bucket gave. */
export interface RateDecision {
  allowed: boolean;
  limit: RateLimit;
  /** Whole requests still available at once after this one. */
  remaining: number;
  /** Seconds (whole, at least 1) until the next request would be accepted; meaningful when refused. */
  retryAfterSeconds: number;
  /** Seconds (whole) until the bucket is full again. */
  resetSeconds: number;
}

interface Bucket {
  tokens: number;
  /** Milliseconds (monotonic) of the last refill. */
  at: number;
  limit: RateLimit;
}

/** Above this many callers remembered, buckets that have refilled completely are forgotten (they hold no state). */
const SWEEP_ABOVE = 10_000;
/**
 * The most callers remembered: beyond, the least recently seen are forgotten (each starts afresh, with a full bucket,
 * if it comes back). A flood from many client addresses is limited per address only this far.
 */
const MOST_CALLERS = 200_000;

/**
 * Token buckets, one per caller (an API key's name, a portal token's account, a client address), in this process.
 * A bucket holds at most `burst` tokens, gains `perSecond` per second, and each request takes one; a request that
 * finds less than one token is refused and told when one will be there. Pure apart from the clock it is given.
 *
 * Per process: with N replicas behind a load balancer a caller gets up to N times the limit (README "Security").
 */
export class RateLimiter {
  /** By caller, least recently seen first (a caller seen again is moved to the end). */
  private readonly buckets = new Map<string, Bucket>();
  /**
   * The size at which the next sweep runs: SWEEP_ABOVE, or twice what the last sweep left. Sweeping at every new caller
   * once SWEEP_ABOVE were remembered and none had refilled (a flood from many addresses) was a scan of every bucket
   * per request, freeing nothing.
   */
  private sweepAt = SWEEP_ABOVE;

  constructor(
    private readonly limitOf: (caller: string) => RateLimit,
    /** Milliseconds from a monotonic clock. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  take(caller: string): RateDecision {
    const now = this.now();
    const limit = this.limitOf(caller);
    let bucket = this.buckets.get(caller);
    if (!bucket) {
      if (this.buckets.size >= this.sweepAt) this.sweep(now);
      if (this.buckets.size >= MOST_CALLERS) this.buckets.delete(this.buckets.keys().next().value as string); // the least recently seen
      bucket = { tokens: limit.burst, at: now, limit };
    } else {
      this.buckets.delete(caller); // set again below: the most recently seen
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.perSecond);
      bucket.at = now;
      bucket.limit = limit;
    }
    this.buckets.set(caller, bucket);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    return {
      allowed,
      limit,
      remaining: Math.floor(bucket.tokens),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / limit.perSecond)),
      resetSeconds: Math.ceil((limit.burst - bucket.tokens) / limit.perSecond),
    };
  }

  /** How many callers are remembered (tests). */
  get size(): number {
    return this.buckets.size;
  }

  /** How many sweeps ran (tests). */
  get sweeps(): number {
    return this.swept;
  }

  private swept = 0;

  /** Forgets the callers whose buckets refilled; the next sweep waits until as many again are remembered. */
  private sweep(now: number): void {
    this.swept += 1;
    for (const [caller, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * bucket.limit.perSecond >= bucket.limit.burst) this.buckets.delete(caller);
    }
    this.sweepAt = Math.max(SWEEP_ABOVE, this.buckets.size * 2);
  }
}
