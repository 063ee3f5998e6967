import { Module } from '@nestjs/common';
import { GrantModule } from '../grant/grant.module';
import { PurchaseHandler } from './purchase.handler';
import { PurchaseHttpController } from './purchase.http.controller';

@Module({ imports: [GrantModule], controllers: [PurchaseHttpController], providers: [PurchaseHandler] })
export class PurchaseModule {}
