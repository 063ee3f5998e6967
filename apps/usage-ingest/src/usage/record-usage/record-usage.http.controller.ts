import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiBody, ApiExtraModels, ApiOperation, getSchemaPath } from '@nestjs/swagger';
import { ApiErrors, ApiKeyName, ApiKeyNamespaces, RequireScope } from '@tally/shared';
import { RecordUsageHandler } from './record-usage.handler';
import { RecordUsageResult, UsageEventBatchRequest, UsageEventRequest } from './usage-event.request.dto';

@ApiBearerAuth()
@ApiExtraModels(UsageEventRequest, UsageEventBatchRequest)
@Controller('v1/usage-events')
export class RecordUsageHttpController {
  constructor(private readonly handler: RecordUsageHandler) {}

  @Post()
  @HttpCode(202)
  @RequireScope('usage:write')
  @ApiOperation({ operationId: 'recordUsage', summary: 'Report one usage event, or {events:[…]} (at most 1,000); 202 once Kafka acknowledged' })
  @ApiBody({ schema: { oneOf: [{ $ref: getSchemaPath(UsageEventRequest) }, { $ref: getSchemaPath(UsageEventBatchRequest) }] } })
  @ApiAcceptedResponse({ type: RecordUsageResult, description: 'Every event accepted or a duplicate' })
  @ApiErrors({ 403: ['ACCOUNT_OUTSIDE_NAMESPACE'], 409: ['IDEMPOTENCY_CONFLICT', 'USAGE_PENDING'], 413: ['BATCH_TOO_LARGE'], 503: ['KAFKA_UNAVAILABLE'] })
  record(
    @Body() body: unknown,
    @ApiKeyName() actor: string | undefined,
    @ApiKeyNamespaces() namespaces: readonly string[] | undefined,
  ): Promise<RecordUsageResult> {
    return this.handler.execute(body, actor, namespaces);
  }
}
