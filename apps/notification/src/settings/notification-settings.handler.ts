import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ContractViolation, ID_PATTERN, type FieldIssue } from '@tally/contracts';
import { retriedOnInsertRace, type Logger } from '@tally/shared';
import { NotificationConfig } from '../config/notification.config';
import { NotificationSettingsEntity } from '../database/notification-settings.entity';
import { isAllowlisted, literalHostProblem } from '../delivery/ssrf.guard';
import { LOGGER } from '@tally/shared';
import { NotificationError, NotificationErrorCode } from '../notification.errors';
import { NOTIFICATION_TYPES, effectivePreferences, type NotificationType, type TypePreferences } from '../notification-type.model';
import type { NotificationSettingsRequest, NotificationSettingsResponse } from './notification-settings.request.dto';
import { WebhookSecretBox } from './webhook-secret.codec';

const MIN_SECRET_BYTES = 24;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function assertAccountId(accountId: string): void {
  if (!ID_PATTERN.test(accountId)) {
    throw new NotificationError(NotificationErrorCode.InvalidAccountId, 'The account id must be 1-128 characters of letters, digits and . _ : @ -');
  }
}

/** Field problems of a webhook URL: https only (http for allowlisted hosts), no credentials, no private literal hosts. */
export function webhookUrlIssues(raw: string, allowlist: readonly string[]): FieldIssue[] {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return [{ field: 'webhookUrl', reason: 'must be an absolute URL' }];
  }
  const issues: FieldIssue[] = [];
  if (url.protocol === 'http:') {
    if (!isAllowlisted(url.hostname, allowlist)) issues.push({ field: 'webhookUrl', reason: 'must use https (plain http only for allowlisted hosts)' });
  } else if (url.protocol !== 'https:') {
    issues.push({ field: 'webhookUrl', reason: 'must use https' });
  }
  if (url.username || url.password) issues.push({ field: 'webhookUrl', reason: 'must not contain credentials' });
  if (url.hash) issues.push({ field: 'webhookUrl', reason: 'must not contain a fragment' });
  const hostProblem = literalHostProblem(url.hostname, allowlist);
  if (hostProblem) issues.push({ field: 'webhookUrl', reason: hostProblem });
  return issues;
}

/** Standard Webhooks form: "whsec_" + base64 of at least 24 bytes. */
export function webhookSecretIssues(secret: string): FieldIssue[] {
  const reason = `must be "whsec_" followed by base64 of at least ${MIN_SECRET_BYTES} random bytes`;
  if (!secret.startsWith('whsec_')) return [{ field: 'webhookSecret', reason }];
  const encoded = secret.slice('whsec_'.length);
  if (!BASE64.test(encoded) || Buffer.from(encoded, 'base64').length < MIN_SECRET_BYTES) return [{ field: 'webhookSecret', reason }];
  return [];
}

export function preferenceIssues(types: Record<string, unknown> | undefined): FieldIssue[] {
  return Object.entries(types ?? {}).flatMap(([type, value]): FieldIssue[] => {
    if (!(NOTIFICATION_TYPES as readonly string[]).includes(type)) {
      return [{ field: `notificationTypes.${type}`, reason: `is not a notification type (one of ${NOTIFICATION_TYPES.join(', ')})` }];
    }
    return typeof value === 'boolean' ? [] : [{ field: `notificationTypes.${type}`, reason: 'must be true or false' }];
  });
}

@Injectable()
export class NotificationSettingsHandler {
  constructor(
    private readonly dataSource: DataSource,
    private readonly config: NotificationConfig,
    private readonly secrets: WebhookSecretBox,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** `wholeWebhookUrl`: false shows the URL's origin only (a reader that may not set it; webhookUrlAsShown). */
  async get(accountId: string, { wholeWebhookUrl }: { wholeWebhookUrl: boolean }): Promise<NotificationSettingsResponse> {
    assertAccountId(accountId);
    const entity = await this.dataSource.getRepository(NotificationSettingsEntity)
      .createQueryBuilder('s')
      .addSelect('s.webhookSecret')
      .where('s.accountId = :accountId', { accountId })
      .getOne();
    if (!entity) throw new NotificationError(NotificationErrorCode.SettingsNotFound, `No notification settings for account ${accountId}.`);
    const response = toResponse(entity, entity.webhookSecret !== null);
    return wholeWebhookUrl ? response : { ...response, webhookUrl: webhookUrlAsShown(response.webhookUrl) };
  }

  /** Validates everything first; nothing is stored unless the whole document is valid. */
  async put(accountId: string, request: NotificationSettingsRequest): Promise<NotificationSettingsResponse> {
    assertAccountId(accountId);
    const email = request.email ?? null;
    const webhookUrl = request.webhookUrl ?? null;
    const issues: FieldIssue[] = [
      ...(webhookUrl !== null ? webhookUrlIssues(webhookUrl, this.config.WEBHOOK_HTTP_ALLOWLIST) : []),
      ...(request.webhookSecret !== undefined ? webhookSecretIssues(request.webhookSecret) : []),
      ...preferenceIssues(request.notificationTypes),
    ];

    // Two first PUTs of an account race to insert its row (FOR UPDATE locks nothing yet): the loser runs again, and
    // then finds and locks the winner's row. Last write wins, as for any two PUTs.
    const saved = await retriedOnInsertRace(() => this.dataSource.transaction(async (manager) => {
      const repository = manager.getRepository(NotificationSettingsEntity);
      const existing = await repository.createQueryBuilder('s')
        .addSelect('s.webhookSecret')
        .where('s.accountId = :accountId', { accountId })
        .setLock('pessimistic_write')
        .getOne();
      // Sealed at rest (AES-256-GCM, bound to the account); a kept secret stays as it is stored.
      const fresh = request.webhookSecret === undefined || issues.length > 0 ? undefined : this.secrets.seal(request.webhookSecret, accountId);
      const secret = webhookUrl === null ? null : (fresh ?? existing?.webhookSecret ?? null);
      // Required only when none was sent (one sent is not sealed while other fields are refused) and none is stored.
      if (webhookUrl !== null && secret === null && request.webhookSecret === undefined) {
        issues.push({ field: 'webhookSecret', reason: 'is required with a webhook URL (none is stored yet)' });
      }
      // The stored secret is the previous receiver's: another party must not get its signatures (it could replay
      // them to that receiver within its timestamp tolerance). Only the same URL keeps it: another path of the same
      // origin is another party where receivers share a host (hooks.zapier.com, hooks.slack.com, an API gateway).
      if (webhookUrl !== null && request.webhookSecret === undefined && existing?.webhookUrl && !sameUrl(existing.webhookUrl, webhookUrl)) {
        issues.push({ field: 'webhookSecret', reason: 'is required when the webhook URL changes (the stored secret is the previous receiver\'s)' });
      }
      if (issues.length > 0) throw new ContractViolation('INVALID_PAYLOAD', issues);
      const entity = repository.create({
        accountId, email, webhookUrl, webhookSecret: secret, preferences: (request.notificationTypes ?? {}) as TypePreferences,
      });
      await repository.save(entity);
      return repository.findOneByOrFail({ accountId }).then((row) => ({ row, hasSecret: secret !== null }));
    }));
    this.logger.info(
      { accountId, email: email !== null, webhook: webhookUrl !== null, secretChanged: request.webhookSecret !== undefined },
      'notification settings saved',
    );
    return toResponse(saved.row, saved.hasSecret);
  }
}

/**
 * A webhook URL as a key that may not set it sees it: its origin, then `/…` where it has a path or query beyond `/`.
 * Receivers often take the URL itself as the credential (a token in the path or query); the origin says where alerts go.
 */
export function webhookUrlAsShown(webhookUrl: string | null): string | null {
  if (webhookUrl === null) return null;
  try {
    const url = new URL(webhookUrl);
    return url.pathname === '/' && url.search === '' ? `${url.origin}/` : `${url.origin}/…`;
  } catch {
    return '…'; // never stored: PUT takes only URLs that parse
  }
}

/** The same URL however spelled (the host's case, a default port: URL's `href`); a stored URL that no longer parses is another. */
function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
}

function toResponse(entity: NotificationSettingsEntity, hasSecret: boolean): NotificationSettingsResponse {
  return {
    accountId: entity.accountId,
    email: entity.email,
    webhookUrl: entity.webhookUrl,
    webhookSecretSet: hasSecret,
    notificationTypes: effectivePreferences(entity.preferences as Partial<Record<NotificationType, boolean>>),
    updatedAt: entity.updatedAt.toISOString(),
  };
}
