import { Body, Controller, Delete, HttpCode, Inject, Post } from '@nestjs/common';
import type { Pool } from 'pg';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { balanceView, type AccountError } from '@tally/ledger-domain';
import { isAccountError } from '@tally/ledger-domain';
import { formatCredits, parseCredits, type Micro } from '@tally/money';
import { priceUsage, type RateCard } from '@tally/pricing';
import { CLOCK, RequireScope, type Clock } from '@tally/shared';
import { AccountRepository } from '../accounts/account.repository';
import { AccountIdParam, HoldIdParam } from '../accounts/account-id.param';
import { LedgerConfig } from '../config/ledger.config';
import { PG_POOL, RATE_CARD } from '../database/database.tokens';
import { ExpirySchedule } from '../expiry/expiry.schedule';
import { LedgerError, toLedgerError } from '../ledger.errors';
import { AuthorizationRequest } from './authorization.request.dto';

const HINT = 'Buy a credit pack or upgrade your plan to continue.';

/**
 * Refuses an AI action before it starts when the account cannot pay. Answers from the ledger's own state
 * (the event stream, via the version-checked cache), never from a read model that may lag.
 */
@ApiTags('authorizations')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId')
export class AuthorizationHttpController {
  private readonly expiries: ExpirySchedule;

  constructor(
    private readonly accounts: AccountRepository,
    private readonly config: LedgerConfig,
    @Inject(RATE_CARD) private readonly rateCard: RateCard,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(PG_POOL) pool: Pool,
  ) {
    this.expiries = new ExpirySchedule(pool, config.DATABASE_SCHEMA);
  }

  @Post('authorizations')
  @HttpCode(200)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'May this account spend N (or this estimated usage)? Optionally place a hold with a TTL' })
  @ApiResponse({ status: 402, description: '{code:"INSUFFICIENT_CREDITS", required, available, message, hint}' })
  async authorize(@AccountIdParam() accountId: string, @Body() body: AuthorizationRequest) {
    const now = this.clock.now();
    const required = this.required(body, now);
    if (body.hold) return this.placeHold(accountId, required, body.hold.holdId, body.hold.ttlSeconds ?? this.config.HOLD_DEFAULT_TTL_SECONDS, now);
    const account = await this.accounts.load(accountId);
    if (account.version === 0) throw new LedgerError('ACCOUNT_NOT_FOUND', `No account ${accountId}.`, { accountId });
    const view = balanceView(account.state, now);
    if (!view.unlimited && view.available < required) throw insufficient(required, view.available);
    return { allowed: true, required: formatCredits(required), available: formatCredits(view.available), unlimited: view.unlimited };
  }

  @Delete('holds/:holdId')
  @HttpCode(200)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'Release a hold before it expires (a hold resolves at most once)' })
  async release(@AccountIdParam() accountId: string, @HoldIdParam() holdId: string) {
    const decision = await this.accounts
      .execute({ type: 'ReleaseHold', accountId, holdId, reason: 'released' }, `release:${holdId}`)
      .catch((error) => {
        throw toLedgerError(error);
      });
    const released = decision.events.find((e) => e.type === 'HoldReleased');
    return {
      holdId,
      released: released ? formatCredits(released.data.amount as Micro) : '0',
      available: formatCredits(balanceView(decision.state, this.clock.now()).available),
    };
  }

  private async placeHold(accountId: string, required: Micro, holdId: string, ttlSeconds: number, now: Date) {
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
    try {
      // Before the append, so no hold is ever recorded without its expiry being scheduled (see ExpiryWorker).
      await this.expiries.add(accountId, 'hold', holdId, expiresAt);
      const decision = await this.accounts.execute({ type: 'PlaceHold', accountId, holdId, amount: required, expiresAt }, `hold:${holdId}`);
      const hold = decision.state.holds.get(holdId);
      return {
        allowed: true,
        required: formatCredits(required),
        available: formatCredits(balanceView(decision.state, now).available),
        hold: { holdId, amount: formatCredits(required), expiresAt: hold?.expiresAt ?? expiresAt },
      };
    } catch (error) {
      if (isAccountError(error, 'INSUFFICIENT_CREDITS')) {
        const { available } = error as AccountError & { available: Micro };
        throw insufficient(required, available);
      }
      throw toLedgerError(error);
    }
  }

  private required(body: AuthorizationRequest, now: Date): Micro {
    if (body.amount !== undefined) return parseCredits(body.amount);
    try {
      return priceUsage(this.rateCard, body.usage as NonNullable<AuthorizationRequest['usage']>, now).amount;
    } catch (error) {
      throw toLedgerError(error);
    }
  }
}

function insufficient(required: Micro, available: Micro): LedgerError {
  return new LedgerError('INSUFFICIENT_CREDITS', 'Insufficient Credits', undefined, {
    required: formatCredits(required),
    available: formatCredits(available < 0n ? 0n : available),
    hint: HINT,
  });
}
