import { MetricSources, counter, firstReading, histogram, scrapeTimeGauges } from '@tally/metrics';

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

export interface DeliveryBacklog {
  /** Deliveries not yet delivered, failed or cancelled. */
  pending: number;
  /** Age of the oldest of them (since its alert was recorded); 0 when none. */
  oldestAgeSeconds: number;
}

/** Reads the pending deliveries at scrape time. */
export interface DeliveryBacklogSource {
  backlog(): Promise<DeliveryBacklog>;
}

export const deliveryBacklogSources = new MetricSources<DeliveryBacklogSource>();

scrapeTimeGauges(() => firstReading(deliveryBacklogSources, (source) => source.backlog()), [
  {
    name: 'tally_notification_pending_deliveries',
    help: 'Notification deliveries not yet delivered, given up or cancelled (first attempts due and retries waiting).',
    value: (backlog) => backlog.pending,
  },
  {
    name: 'tally_notification_oldest_pending_age_seconds',
    help: 'Age of the oldest pending notification delivery, since its alert was recorded (0 when none): an SMTP server or receiver failing for long shows here before its deliveries are given up.',
    value: (backlog) => backlog.oldestAgeSeconds,
  },
]);
