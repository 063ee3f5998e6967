import { Module } from '@nestjs/common';
import { BackgroundWorkers } from './background-workers';

/** The registry the write side's workers add themselves to (started after bootstrap, stopped first on shutdown). */
@Module({ providers: [BackgroundWorkers], exports: [BackgroundWorkers] })
export class WorkersModule {}
