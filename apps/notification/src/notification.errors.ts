import { AppError, type HttpStatusByCode } from '@tally/shared';

export enum NotificationErrorCode {
  SettingsNotFound = 'NOTIFICATION_SETTINGS_NOT_FOUND',
  InvalidAccountId = 'INVALID_ACCOUNT_ID',
}

export class NotificationError extends AppError<NotificationErrorCode> {}

export const NOTIFICATION_STATUS_BY_CODE: HttpStatusByCode = {
  [NotificationErrorCode.SettingsNotFound]: 404,
  [NotificationErrorCode.InvalidAccountId]: 400,
};
