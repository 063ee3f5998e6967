import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { GrantModule } from '../grant/grant.module';
import { PurchaseHandler } from './purchase.handler';
import { PurchaseHttpController } from './purchase.http.controller';

@Module({ imports: [AccountsModule, GrantModule], controllers: [PurchaseHttpController], providers: [PurchaseHandler] })
export class PurchaseModule {}
