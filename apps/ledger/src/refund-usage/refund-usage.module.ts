import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { RefundUsageHandler } from './refund-usage.handler';
import { RefundUsageHttpController } from './refund-usage.http.controller';

@Module({ imports: [AccountsModule], controllers: [RefundUsageHttpController], providers: [RefundUsageHandler] })
export class RefundUsageModule {}
