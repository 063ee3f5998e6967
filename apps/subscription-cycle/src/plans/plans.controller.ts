import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '@tally/shared';
import type { Catalogue } from '@tally/subscription-domain';
import { CATALOGUE } from './catalogue.provider';
import { PlansResponseDto } from './plans.dto';

@ApiTags('plans')
@ApiBearerAuth()
@Controller('v1/plans')
export class PlansController {
  private readonly body: PlansResponseDto;

  constructor(@Inject(CATALOGUE) catalogue: Catalogue) {
    this.body = PlansResponseDto.from(catalogue);
  }

  @Get()
  @RequireScope('accounts:read')
  @ApiOkResponse({ type: PlansResponseDto })
  list(): PlansResponseDto {
    return this.body;
  }
}
