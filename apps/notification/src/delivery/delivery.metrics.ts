import { counter, histogram } from '@tally/metrics';

/** One per delivery attempt that ended: `delivered`, `retrying` (failed, another attempt scheduled), `failed` (gave up), `cancelled` (channel no longer configured). */
export const deliveryAttempts = counter({
  name: 'tally_notification_deliveries_total',
  help: 'Notification delivery attempts by channel (email, webhook) and outcome (delivered, retrying, failed, cancelled).',
  labelNames: ['channel', 'outcome'],
});

export const deliveryDuration = histogram({
  name: 'tally_notification_delivery_duration_seconds',
  help: 'Time of one delivery attempt (SMTP send or webhook POST), by channel.',
  labelNames: ['channel'],
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
});
