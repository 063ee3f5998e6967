import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import { RecordUsageHandler } from './record-usage.handler';
import { UsageEventRequest, type RecordUsageResult } from './usage-event.request.dto';

@ApiTags('usage')
@ApiBearerAuth()
@Controller('v1/usage-events')
export class RecordUsageHttpController {
  constructor(private readonly handler: RecordUsageHandler) {}

  @Post()
  @HttpCode(202)
  @RequireScope('usage:write')
  @ApiOperation({ summary: 'Report one usage event, or {events:[…]} (at most 1,000); 202 once Kafka acknowledged' })
  @ApiBody({ type: UsageEventRequest })
  @ApiResponse({ status: 202, description: '{accepted, duplicates, duplicateIds}' })
  @ApiResponse({ status: 400, description: '{code:"VALIDATION_FAILED", details:[{field, reason}]}; nothing accepted' })
  record(@Body() body: unknown): Promise<RecordUsageResult> {
    return this.handler.execute(body);
  }
}
