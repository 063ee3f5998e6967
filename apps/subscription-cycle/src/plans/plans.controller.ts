import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import type { Catalogue } from '@tally/subscription-domain';
import { CATALOGUE } from './catalogue.provider';
import { PlansResponseDto } from './plans.dto';

@ApiBearerAuth()
@Controller('v1/plans')
export class PlansController {
  private readonly body: PlansResponseDto;

  constructor(@Inject(CATALOGUE) catalogue: Catalogue) {
    this.body = PlansResponseDto.from(catalogue);
  }

  @Get()
  @RequireScope('accounts:read')
  @ApiOperation({ operationId: 'listPlans', summary: 'The plans catalogue and the credit packs' })
  @ApiOkResponse({ type: PlansResponseDto })
  list(): PlansResponseDto {
    return this.body;
  }
}
