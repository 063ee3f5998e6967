import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { Pool } from 'pg';
import { LOGGER, quoteIdentifier, type Logger } from '@tally/shared';
import { NotificationConfig } from '../config/notification.config';
import { PG_POOL } from '../database/database.provider';
import { WebhookSecretBox } from './webhook-secret.codec';

const BATCH = 500;

/**
 * At boot, before the service reports ready: every stored webhook secret that is in plain text (stored before
 * encryption) or sealed with a key other than the current one is resealed with the current key, row by row with a
 * compare-and-set (a secret changed meanwhile is left to its writer). A secret sealed with a key that is no longer
 * configured stops the boot, naming the key and how many secrets need it: removing a key too early must not
 * silently break those accounts' webhooks.
 */
@Injectable()
export class WebhookSecretResealer implements OnApplicationBootstrap {
  constructor(
    private readonly config: NotificationConfig,
    private readonly box: WebhookSecretBox,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.WEBHOOK_SECRET_KEYS === undefined) {
      this.logger.warn({}, 'WEBHOOK_SECRET_KEYS is not set: webhook secrets are encrypted with the development key (set it; production refuses to start without it)');
    }
    const { resealed, unknownKeys } = await this.resealAll();
    if (resealed > 0) this.logger.info({ resealed }, 'webhook secrets resealed with the current key');
    if (unknownKeys.size > 0) {
      const missing = [...unknownKeys].map(([keyId, count]) => `${keyId} (${count} secret${count === 1 ? '' : 's'})`).join(', ');
      throw new Error(`webhook secrets are sealed with keys that WEBHOOK_SECRET_KEYS no longer lists: ${missing}; add them back after the current key`);
    }
  }

  async resealAll(): Promise<{ resealed: number; unknownKeys: Map<string, number> }> {
    const s = quoteIdentifier(this.config.DATABASE_SCHEMA);
    const unknownKeys = new Map<string, number>();
    let resealed = 0;
    for (let after = ''; ;) {
      const { rows } = await this.pool.query<{ account_id: string; webhook_secret: string }>(
        `SELECT account_id, webhook_secret FROM ${s}.notification_settings
          WHERE webhook_secret IS NOT NULL AND account_id > $1 ORDER BY account_id LIMIT ${BATCH}`,
        [after],
      );
      for (const { account_id: accountId, webhook_secret: stored } of rows) {
        if (!this.box.needsReseal(stored)) continue;
        const keyId = this.box.keyIdOf(stored);
        if (keyId !== undefined && !this.box.knows(keyId)) {
          unknownKeys.set(keyId, (unknownKeys.get(keyId) ?? 0) + 1);
          continue;
        }
        let secret: string;
        try {
          secret = this.box.open(stored, accountId);
        } catch (error) {
          // Altered, or copied from another account: it stays as it is, and its deliveries fail with the reason.
          this.logger.error({ accountId, err: (error as Error).message }, 'webhook secret cannot be opened; left as stored');
          continue;
        }
        const { rowCount } = await this.pool.query(
          `UPDATE ${s}.notification_settings SET webhook_secret = $3 WHERE account_id = $1 AND webhook_secret = $2`,
          [accountId, stored, this.box.seal(secret, accountId)],
        );
        resealed += rowCount ?? 0;
      }
      if (rows.length < BATCH) return { resealed, unknownKeys };
      after = rows[rows.length - 1].account_id;
    }
  }
}
