import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DeliveryEntity, type DeliveryState } from '../database/delivery.entity';
import type { Channel } from '../notification-type.model';
import { assertAccountId } from '../settings/notification-settings.handler';

export interface DeliveryLogEntry {
  id: string;
  notificationId: string;
  channel: Channel;
  type: string;
  eventId: string;
  state: DeliveryState;
  attempts: number;
  /** One per attempt, in order: HTTP status (webhook) or SMTP reply code (email); null when nothing answered. */
  statusCodes: (number | null)[];
  lastError: string | null;
  nextRetryAt: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

@Injectable()
export class DeliveryLogHandler {
  constructor(private readonly dataSource: DataSource) {}

  /** Newest first. */
  async list(accountId: string, limit: number): Promise<{ items: DeliveryLogEntry[] }> {
    assertAccountId(accountId);
    const rows = await this.dataSource.getRepository(DeliveryEntity).find({
      where: { accountId },
      order: { createdAt: 'DESC', id: 'ASC' },
      take: limit,
    });
    return {
      items: rows.map((row) => ({
        id: row.id,
        notificationId: row.notificationId,
        channel: row.channel,
        type: row.notificationType,
        eventId: row.eventId,
        state: row.state,
        attempts: row.attempts,
        statusCodes: row.attemptLog.map((attempt) => attempt.statusCode ?? null),
        lastError: row.lastError,
        // While an attempt is in flight next_attempt_at holds the lease; it is still when the next try may start.
        nextRetryAt: row.state === 'pending' && row.nextAttemptAt ? row.nextAttemptAt.toISOString() : null,
        createdAt: row.createdAt.toISOString(),
        deliveredAt: row.deliveredAt ? row.deliveredAt.toISOString() : null,
      })),
    };
  }
}
