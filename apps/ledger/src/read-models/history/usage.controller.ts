import { Controller, Get, Logger, Param, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { DateTime } from 'luxon';
import { ApiErrors, ApiIdParam, hijackReply, PortalGrantOf, PortalReadable, RequireScope, type PortalGrant } from '@tally/shared';
import { UsageExportQueryDto, UsageQueryDto } from './history.dto';
import { UsageSummaryDto } from './history.response.dto';
import { DEFAULT_USAGE_DAYS, PORTAL_MAX_RANGE_DAYS } from './history.parser';
import { UsageExportService } from './usage-export.service';
import { UsageQueryService } from './usage.query';

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/usage')
export class UsageController {
  private readonly logger = new Logger(UsageController.name);

  constructor(
    private readonly usage: UsageQueryService,
    private readonly exporter: UsageExportService,
  ) {}

  /** Credits and requests, in total and by model, feature and day (in `tz`, UTC by default). */
  @Get()
  @RequireScope('accounts:read')
  @PortalReadable()
  @ApiOperation({ operationId: 'getUsage', summary: 'Credits and requests in a period, in total and by model, feature and day (in tz, UTC by default)' })
  @ApiOkResponse({ type: UsageSummaryDto })
  @ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'] })
  summary(@Param('accountId') accountId: string, @Query() query: UsageQueryDto, @PortalGrantOf() portal: PortalGrant | undefined): Promise<UsageSummaryDto> {
    return this.usage.summary(accountId, query, portal ? PORTAL_MAX_RANGE_DAYS : undefined);
  }

  /** One CSV row per usage event, oldest first, streamed; the last 30 days unless `period` or `from`/`to` say otherwise. */
  @Get('export')
  @RequireScope('accounts:read')
  @PortalReadable()
  @ApiOperation({ operationId: 'exportUsage', summary: 'One CSV row per usage event in a period, streamed' })
  @ApiOkResponse({
    description: 'CSV with the header occurred_at,usage_id,feature,model,input_tokens,output_tokens,images,resolution,video_seconds,credits,rate_card_version. '
      + "A cell that starts with =, +, -, @, a tab or a carriage return is prefixed with ' (an id such as -1-1 is exported as '-1-1), "
      + 'so that a spreadsheet shows it as text instead of running it as a formula.',
    content: { 'text/csv': { schema: { type: 'string' } } },
  })
  @ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'] })
  async export(
    @Param('accountId') accountId: string,
    @Query() query: UsageExportQueryDto,
    @PortalGrantOf() portal: PortalGrant | undefined,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    // Errors up to here still become JSON error responses; after the headers, a failure can only cut the stream.
    const range = await this.usage.resolveRange(accountId, query, DEFAULT_USAGE_DAYS, portal ? PORTAL_MAX_RANGE_DAYS : undefined);
    const day = (date: Date) => DateTime.fromJSDate(date, { zone: range.timeZone }).toFormat('yyyy-MM-dd');
    // The file is named after the first and the last day it holds in `tz`: the range's end is exclusive.
    const lastDay = new Date(range.to.getTime() - 1);
    // From here on the handler writes the Node response itself (a stream Fastify must not touch).
    const res = hijackReply(reply);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="usage-${accountId.replace(/[^A-Za-z0-9._-]/g, '_')}-${day(range.from)}-${day(lastDay)}.csv"`);
    res.setHeader('Cache-Control', 'no-store');
    try {
      const rows = await this.exporter.writeCsv(accountId, range, res);
      this.logger.log({ accountId, rows }, 'usage exported');
    } catch (error) {
      this.logger.warn({ accountId, err: (error as Error).message }, 'usage export interrupted');
      res.destroy();
    }
  }
}
