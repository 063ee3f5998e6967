import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { VoidGrantHandler } from './void-grant.handler';
import { VoidGrantHttpController } from './void-grant.http.controller';

@Module({ imports: [AccountsModule], controllers: [VoidGrantHttpController], providers: [VoidGrantHandler] })
export class VoidGrantModule {}
