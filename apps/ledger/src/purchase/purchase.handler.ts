import { Inject, Injectable } from '@nestjs/common';
import { parseCredits } from '@tally/money';
import type { Catalogue } from '@tally/subscription-domain';
import { CATALOGUE } from '../database/tokens.provider';
import { GrantHandler } from '../grant/grant.handler';
import { LedgerError } from '../ledger.errors';
import type { PurchaseRequest } from './purchase.request.dto';

/** Purchased credits (a catalogue pack, or an amount): never expire; idempotent by payment reference. */
@Injectable()
export class PurchaseHandler {
  constructor(
    private readonly grants: GrantHandler,
    @Inject(CATALOGUE) private readonly catalogue: Catalogue,
  ) {}

  purchase(accountId: string, body: PurchaseRequest, actor?: string) {
    if (body.packId !== undefined && body.amount !== undefined) {
      throw new LedgerError('INVALID_COMMAND', 'Give either packId or amount, not both.', { fields: ['packId', 'amount'] });
    }
    const pack = body.packId === undefined ? undefined : this.catalogue.packs.get(body.packId);
    if (body.packId !== undefined && !pack) {
      throw new LedgerError('UNKNOWN_PACK', 'There is no credit pack with this id.', { field: 'packId', packs: [...this.catalogue.packs.keys()] });
    }
    return this.grants.credit({
      type: 'GrantCredits',
      accountId,
      grantId: `purchase:${body.paymentReference}`,
      kind: 'purchased',
      amount: pack ? pack.credits : parseCredits(body.amount as string),
      source: pack ? `pack:${pack.id}` : 'purchase',
      paymentReference: body.paymentReference,
    }, actor);
  }
}
