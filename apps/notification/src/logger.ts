import { createLogger, type Logger } from '@tally/shared';

export const LOGGER = Symbol('LOGGER');

export const createNotificationLogger = (level: string): Logger => createLogger('notification', level);
