import type { Micro } from '@tally/money';

export type PricedFeature = 'chat' | 'agent' | 'image' | 'video' | 'council';
export const PRICED_FEATURES: readonly PricedFeature[] = ['chat', 'agent', 'image', 'video', 'council'];

/** Micro-credits per million tokens. */
export interface TokenPrices {
  readonly inputPerMillion: Micro;
  readonly outputPerMillion: Micro;
}

export interface ModelPrices {
  readonly chat?: TokenPrices;
  readonly agent?: TokenPrices;
  /** Micro-credits per image, by resolution ("1024x1024"). */
  readonly image?: ReadonlyMap<string, Micro>;
  /** Micro-credits per second of video. */
  readonly video?: { readonly perSecond: Micro };
}

export interface RateCardVersion {
  readonly version: string;
  readonly effectiveFrom: Date;
  readonly models: ReadonlyMap<string, ModelPrices>;
}

/** Versions sorted by `effectiveFrom`, oldest first. */
export interface RateCard {
  readonly versions: readonly RateCardVersion[];
}

export interface UsageToPrice {
  feature: PricedFeature;
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  images?: number;
  resolution?: string;
  videoSeconds?: number;
  responses?: Array<{ model: string; inputTokens: number; outputTokens: number }>;
}

export interface PricedLine {
  model: string;
  feature: string;
  inputTokens?: number;
  outputTokens?: number;
  images?: number;
  resolution?: string;
  videoSeconds?: number;
  /** This line's whole-µcr share of the event total; the shares sum exactly to `PricedUsage.amount`. */
  amount: Micro;
}

export interface PricedUsage {
  /** Micro-credits, rounded up once for the whole event. */
  amount: Micro;
  rateCardVersion: string;
  lines: PricedLine[];
}
