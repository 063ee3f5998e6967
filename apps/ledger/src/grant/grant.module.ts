import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { ExpiryModule } from '../expiry/expiry.module';
import { GrantHandler } from './grant.handler';
import { GrantHttpController } from './grant.http.controller';

/** Exports GrantHandler: a purchase is a GrantCredits of purchased credits. */
@Module({ imports: [AccountsModule, ExpiryModule], controllers: [GrantHttpController], providers: [GrantHandler], exports: [GrantHandler] })
export class GrantModule {}
