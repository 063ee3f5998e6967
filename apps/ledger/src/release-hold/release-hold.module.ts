import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { ReleaseHoldHandler } from './release-hold.handler';
import { ReleaseHoldHttpController } from './release-hold.http.controller';

@Module({ imports: [AccountsModule], controllers: [ReleaseHoldHttpController], providers: [ReleaseHoldHandler] })
export class ReleaseHoldModule {}
