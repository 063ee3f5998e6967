import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { ExpiryModule } from '../expiry/expiry.module';
import { AuthorizeHandler } from './authorize.handler';
import { AuthorizeHttpController } from './authorize.http.controller';

@Module({ imports: [AccountsModule, ExpiryModule], controllers: [AuthorizeHttpController], providers: [AuthorizeHandler] })
export class AuthorizeModule {}
