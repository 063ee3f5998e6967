import { Body, Controller, HttpCode, Inject, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { GrantCredits } from '@tally/ledger-domain';
import { balanceView } from '@tally/ledger-domain';
import { formatCredits, parseCredits } from '@tally/money';
import { CLOCK, RequireScope, type Clock } from '@tally/shared';
import type { Catalogue } from '@tally/subscription-domain';
import type { Pool } from 'pg';
import { LedgerConfig } from '../config/ledger.config';
import { CATALOGUE, PG_POOL } from '../database/database.tokens';
import { ExpirySchedule } from '../expiry/expiry.schedule';
import { LedgerError, toLedgerError } from '../ledger.errors';
import { AccountRepository } from './account.repository';
import { AccountIdParam } from './account-id.param';
import { balanceFromView } from './balance/balance.response';
import { GrantRequest } from './grant/grant.request.dto';
import { PurchaseRequest } from './purchase/purchase.request.dto';

/**
 * Credits that come in over HTTP: purchases (never expire; idempotent by payment reference) and promotional
 * grants (optional expiry; idempotent by key). A repeat with the same content answers 200 with the first result's
 * grant; the same key with different content is 409.
 */
@ApiTags('accounts')
@ApiBearerAuth()
@Controller('v1/accounts/:accountId')
export class CreditAccountsHttpController {
  private readonly expiries: ExpirySchedule;

  constructor(
    private readonly accounts: AccountRepository,
    @Inject(CATALOGUE) private readonly catalogue: Catalogue,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(PG_POOL) pool: Pool,
    config: LedgerConfig,
  ) {
    this.expiries = new ExpirySchedule(pool, config.DATABASE_SCHEMA);
  }

  @Post('purchases')
  @HttpCode(201)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'Add purchased credits: a catalogue pack or an amount; idempotent by paymentReference' })
  async purchase(@AccountIdParam() accountId: string, @Body() body: PurchaseRequest, @Res({ passthrough: true }) res: FastifyReply) {
    if (body.packId !== undefined && body.amount !== undefined) {
      throw new LedgerError('INVALID_COMMAND', 'Give either packId or amount, not both.', { fields: ['packId', 'amount'] });
    }
    const pack = body.packId === undefined ? undefined : this.catalogue.packs.get(body.packId);
    if (body.packId !== undefined && !pack) {
      throw new LedgerError('UNKNOWN_PACK', `No credit pack ${body.packId}.`, { field: 'packId', packs: [...this.catalogue.packs.keys()] });
    }
    return this.grant(res, {
      type: 'GrantCredits',
      accountId,
      grantId: `purchase:${body.paymentReference}`,
      kind: 'purchased',
      amount: pack ? pack.credits : parseCredits(body.amount as string),
      source: pack ? `pack:${pack.id}` : 'purchase',
      paymentReference: body.paymentReference,
    });
  }

  @Post('grants')
  @HttpCode(201)
  @RequireScope('accounts:write')
  @ApiOperation({ summary: 'Grant promotional credits with an optional expiry; idempotent by idempotencyKey' })
  async promote(@AccountIdParam() accountId: string, @Body() body: GrantRequest, @Res({ passthrough: true }) res: FastifyReply) {
    return this.grant(res, {
      type: 'GrantCredits',
      accountId,
      grantId: `grant:${body.idempotencyKey}`,
      kind: 'promotional',
      amount: parseCredits(body.amount),
      source: `promo:${body.reason ?? body.idempotencyKey}`,
      ...(body.expiresAt ? { expiresAt: new Date(body.expiresAt).toISOString() } : {}),
    });
  }

  private async grant(res: FastifyReply, command: GrantCredits) {
    // Before the append, so no expiring grant is ever recorded without its expiry being scheduled (see ExpiryWorker).
    if (command.expiresAt !== undefined) await this.expiries.add(command.accountId, 'credits', command.grantId, command.expiresAt);
    const decision = await this.accounts.execute(command, command.grantId).catch((error) => {
      throw toLedgerError(error);
    });
    const duplicate = decision.events.length === 0;
    if (duplicate) res.status(200);
    return {
      accountId: command.accountId,
      grantId: command.grantId,
      kind: command.kind,
      amount: formatCredits(command.amount),
      duplicate,
      balance: balanceFromView(command.accountId, balanceView(decision.state, this.clock.now()), decision.version),
    };
  }
}
