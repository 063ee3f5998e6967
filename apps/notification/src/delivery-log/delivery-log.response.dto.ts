import { ApiProperty } from '@nestjs/swagger';
import { DELIVERY_STATES } from '../database/delivery.entity';
import { CHANNELS, NOTIFICATION_TYPES } from '../notification-type.model';
import type { DeliveryLogEntry } from './delivery-log.handler';

export class DeliveryLogEntryDto implements DeliveryLogEntry {
  @ApiProperty() id!: string;
  @ApiProperty() notificationId!: string;
  @ApiProperty({ enum: CHANNELS }) channel!: DeliveryLogEntry['channel'];
  @ApiProperty({ enum: NOTIFICATION_TYPES }) type!: string;
  @ApiProperty({ description: 'The ledger event that called for the notification' }) eventId!: string;
  @ApiProperty({ enum: DELIVERY_STATES }) state!: DeliveryLogEntry['state'];
  @ApiProperty({ type: 'integer', minimum: 0 }) attempts!: number;
  @ApiProperty({ type: 'array', items: { type: 'integer', nullable: true }, description: 'Per attempt: HTTP status (webhook) or SMTP reply code (email); null when nothing answered' })
  statusCodes!: (number | null)[];
  @ApiProperty({ type: String, nullable: true }) lastError!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) nextRetryAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) deliveredAt!: string | null;
}

/** The delivery log, newest first. */
export class DeliveryLogResponseDto {
  @ApiProperty({ type: [DeliveryLogEntryDto] }) items!: DeliveryLogEntryDto[];
}
