import type { Subscription } from './event-store.port';

/** The subscriptions an adapter has handed out, so that close() can stop those still running. */
export class SubscriptionRegistry {
  private readonly running = new Set<Subscription>();

  /** Registers a started subscription; stopping the returned handle also forgets it. */
  track(subscription: Subscription): Subscription {
    this.running.add(subscription);
    return {
      stop: async () => {
        this.running.delete(subscription);
        await subscription.stop();
      },
    };
  }

  async stopAll(): Promise<void> {
    const all = [...this.running];
    this.running.clear();
    await Promise.all(all.map((subscription) => subscription.stop()));
  }
}
