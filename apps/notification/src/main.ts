import { bootstrapHttpApp, loadConfig } from '@tally/shared';
import { NotificationConfig } from './config/notification.config';
import { buildNotificationModule, notificationMicroservices } from './notification.module';
import { NOTIFICATION_STATUS_BY_CODE } from './notification.errors';

async function main(): Promise<void> {
  const config = loadConfig(NotificationConfig);
  await bootstrapHttpApp(buildNotificationModule({ config }), {
    service: 'notification',
    title: 'Tally notification',
    config,
    statusByCode: NOTIFICATION_STATUS_BY_CODE,
    microservices: notificationMicroservices,
  });
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
