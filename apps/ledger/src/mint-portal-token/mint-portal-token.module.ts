import { Module } from '@nestjs/common';
import { LedgerConfig } from '../config/ledger.config';
import { ReadModelsModule } from '../read-models/read-models.module';
import { MintPortalTokenHandler } from './mint-portal-token.handler';
import { MintPortalTokenHttpController, PortalSessionHttpController } from './mint-portal-token.http.controller';
import { PORTAL_TOKEN_CODEC, portalTokenCodec } from './portal-access.provider';

/**
 * Portal tokens (issue 16): minting (scope portal:mint) and the session a token grants. The tokens are checked by
 * the HTTP app's ApiKeyGuard (portalHttpOptions in main.ts); minting checks the account in the balance read model.
 */
@Module({
  imports: [ReadModelsModule],
  controllers: [MintPortalTokenHttpController, PortalSessionHttpController],
  providers: [MintPortalTokenHandler, { provide: PORTAL_TOKEN_CODEC, inject: [LedgerConfig], useFactory: portalTokenCodec }],
})
export class MintPortalTokenModule {}
