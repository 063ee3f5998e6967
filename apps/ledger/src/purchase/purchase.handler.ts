import { Inject, Injectable } from '@nestjs/common';
import { rememberedGrant } from '@tally/ledger-domain';
import { parseCredits, type Micro } from '@tally/money';
import type { Catalogue } from '@tally/subscription-domain';
import { AccountRepository } from '../accounts/account.repository';
import { CATALOGUE } from '../database/tokens.provider';
import { GrantHandler } from '../grant/grant.handler';
import { LedgerError } from '../ledger.errors';
import type { PurchaseRequest } from './purchase.request.dto';

/** Purchased credits (a catalogue pack, or an amount): never expire; idempotent by payment reference. */
@Injectable()
export class PurchaseHandler {
  constructor(
    private readonly grants: GrantHandler,
    private readonly accounts: AccountRepository,
    @Inject(CATALOGUE) private readonly catalogue: Catalogue,
  ) {}

  async purchase(accountId: string, body: PurchaseRequest, actor?: string) {
    if (body.packId !== undefined && body.amount !== undefined) {
      throw new LedgerError('INVALID_COMMAND', 'Give either packId or amount, not both.', { fields: ['packId', 'amount'] });
    }
    const grantId = `purchase:${body.paymentReference}`;
    const credits = body.packId === undefined ? parseCredits(body.amount as string) : await this.packCredits(accountId, grantId, body.packId);
    return this.grants.credit({
      type: 'GrantCredits',
      accountId,
      grantId,
      kind: 'purchased',
      amount: credits,
      source: body.packId === undefined ? 'purchase' : `pack:${body.packId}`,
      paymentReference: body.paymentReference,
    }, actor);
  }

  /**
   * What the pack credits. A purchase of this pack already made under this payment reference is that purchase: its
   * retry (a lost answer) after the catalogue repriced or withdrew the pack is a repeat of what was credited, not
   * other content or an unknown pack. The account's grant keys are never forgotten (ledger-domain's account memory).
   */
  private async packCredits(accountId: string, grantId: string, packId: string): Promise<Micro> {
    const made = rememberedGrant((await this.accounts.load(accountId)).state, grantId);
    if (made?.kind === 'purchased' && made.source === `pack:${packId}`) return made.amount;
    const pack = this.catalogue.packs.get(packId);
    if (!pack) throw new LedgerError('UNKNOWN_PACK', 'There is no credit pack with this id.', { field: 'packId', packs: [...this.catalogue.packs.keys()] });
    return pack.credits;
  }
}
