import { ApiProperty } from '@nestjs/swagger';
import { formatCredits } from '@tally/money';
import type { Catalogue, CreditPack, Plan } from '@tally/subscription-domain';

export class PlanDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'USD, decimal string' }) price!: string;
  @ApiProperty({ enum: ['monthly', 'yearly'], description: 'How the plan is billed; credits refresh monthly either way. A yearly plan is kept until its paid year ends when cancelled or downgraded.' }) interval!: string;
  @ApiProperty({ description: 'Credits granted each cycle, decimal string ("0" for unlimited plans)' }) creditsPerMonth!: string;
  @ApiProperty() unlimited!: boolean;
  @ApiProperty({ type: [Number] }) alertThresholds!: number[];
  @ApiProperty({ enum: ['carry', 'write-off'] }) overdraftPolicy!: string;
  @ApiProperty({ description: 'Higher rank = upgrade (immediate); lower = downgrade (at cycle end)' }) rank!: number;
  @ApiProperty({ description: 'No longer offered: renewed for the accounts on it, who can leave it, but nobody can subscribe or change to it (PLAN_RETIRED)' }) retired!: boolean;

  static from(plan: Plan): PlanDto {
    return {
      id: plan.id,
      name: plan.name,
      price: plan.price,
      interval: plan.interval,
      creditsPerMonth: formatCredits(plan.creditsPerMonth),
      unlimited: plan.unlimited,
      alertThresholds: [...plan.alertThresholds],
      overdraftPolicy: plan.overdraftPolicy,
      rank: plan.rank,
      retired: plan.retired,
    };
  }
}

export class CreditPackDto {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'Credits, decimal string' }) credits!: string;
  @ApiProperty({ description: 'USD, decimal string' }) price!: string;

  static from(pack: CreditPack): CreditPackDto {
    return { id: pack.id, credits: formatCredits(pack.credits), price: pack.price };
  }
}

export class PlansResponseDto {
  @ApiProperty() catalogueVersion!: string;
  @ApiProperty({ description: 'The plan a cancelled subscription falls back to' }) fallbackPlanId!: string;
  @ApiProperty({ type: [PlanDto] }) plans!: PlanDto[];
  @ApiProperty({ type: [CreditPackDto] }) packs!: CreditPackDto[];

  static from(catalogue: Catalogue): PlansResponseDto {
    return {
      catalogueVersion: catalogue.version,
      fallbackPlanId: catalogue.fallbackPlanId,
      plans: [...catalogue.plans.values()].sort((a, b) => a.rank - b.rank).map(PlanDto.from),
      packs: [...catalogue.packs.values()].map(CreditPackDto.from),
    };
  }
}
