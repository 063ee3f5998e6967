// An example product service, written only against @tally/client (as a product's backend would import it).
// eslint-disable-next-line @nx/enforce-module-boundaries -- the example imports the package by its published name
import { TallyClient, type InsufficientCredits, type Usage } from '@tally/client';

/** The product's model: streams the tokens of an answer (simulated in the test; an LLM SDK in a product). */
export interface ChatModel {
  stream(prompt: string): AsyncIterable<string>;
}

export type ChatAnswer = { ok: true; text: string; holdId: string; usage: Usage } | InsufficientCredits;

/**
 * A chat product's backend: before answering it holds what the answer may cost, streams the answer, then settles
 * the hold with what it really used. Out of credits, it answers "Insufficient Credits" instead; if the model fails
 * midway, `withHold` releases the hold and the error reaches the caller.
 */
export class ChatProduct {
  constructor(
    private readonly tally: TallyClient,
    private readonly model: ChatModel,
  ) {}

  async answer(accountId: string, prompt: string, onToken: (token: string) => void = () => undefined): Promise<ChatAnswer> {
    const inputTokens = prompt.split(/\s+/).length;
    // At most 2,000 tokens out: hold what that would cost at gpt-4o's price.
    const estimate = { usage: { feature: 'chat' as const, model: 'gpt-4o', inputTokens, outputTokens: 2_000 } };
    let text = '';
    const result = await this.tally.withHold(accountId, estimate, async () => {
      let outputTokens = 0;
      for await (const token of this.model.stream(prompt)) {
        text += token;
        outputTokens += 1;
        onToken(token);
      }
      return { feature: 'chat', model: 'gpt-4o', inputTokens, outputTokens };
    });
    if (!result.ok) return result; // { ok: false, reason: 'INSUFFICIENT_CREDITS', required, available, hint }
    return { ok: true, text, holdId: result.hold.holdId, usage: result.usage };
  }

  /**
   * The user's "Credits" link: a short-lived portal token for this account only (read-only, plus "Buy credits"
   * through the product's own checkout), and the URL of Tally's credits page with it, for an iframe or a new tab.
   */
  async creditsPage(accountId: string): Promise<{ url: string; token: string; expiresAt: string }> {
    const minted = await this.tally.mintPortalToken(accountId, {
      ttlSeconds: 900,
      purchase: true,
      checkoutUrl: 'https://chat.example/checkout',
      upgradeUrl: 'https://chat.example/plans',
    });
    return { url: minted.pageUrl, token: minted.token, expiresAt: minted.expiresAt };
  }

  /** What the header shows: the balance now, then after every change, until `signal` aborts. */
  async *liveBalance(accountId: string, signal: AbortSignal): AsyncGenerator<string> {
    for await (const balance of this.tally.balanceStream(accountId, { signal })) yield balance.available;
  }
}
