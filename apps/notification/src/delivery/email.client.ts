import nodemailer, { type Transporter } from 'nodemailer';
import { carrierHeaders, carrierOf } from '@tally/shared';
import type { NotificationConfig } from '../config/notification.config';
import type { NotificationContent } from '../notification-type.model';
import { renderEmail } from './email.view';
import { isRetryableSmtpCode, type AttemptOutcome } from './retry.schedule';

/** Sends notification emails over SMTP (host, port, TLS and auth from config). */
export class Mailer {
  private readonly transport: Transporter;

  constructor(private readonly config: NotificationConfig) {
    this.transport = nodemailer.createTransport({
      host: config.SMTP_HOST,
      port: config.SMTP_PORT,
      secure: config.SMTP_SECURE,
      auth: config.SMTP_USER ? { user: config.SMTP_USER, pass: config.SMTP_PASSWORD ?? '' } : undefined,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
  }

  async send(to: string, content: NotificationContent): Promise<AttemptOutcome> {
    const email = renderEmail(content, { billingUrl: this.config.BILLING_URL });
    try {
      const info = await this.transport.sendMail({
        from: this.config.MAIL_FROM,
        to,
        subject: email.subject,
        text: email.text,
        html: email.html,
        // Stable across retries, so a resend inside the at-least-once window can be recognised downstream.
        messageId: `<${content.notificationId}@tally.notification>`,
        // And the trace context and request id of the delivery, as on webhooks.
        headers: { 'X-Tally-Notification-Id': content.notificationId, 'X-Tally-Notification-Type': content.type, ...carrierHeaders(carrierOf()) },
      });
      return { kind: 'delivered', statusCode: smtpCode(info.response) };
    } catch (error) {
      const code = (error as { responseCode?: number }).responseCode;
      const message = error instanceof Error ? error.message : String(error);
      if (code !== undefined && !isRetryableSmtpCode(code)) return { kind: 'permanent', statusCode: code, error: message };
      return { kind: 'retryable', statusCode: code, error: message };
    }
  }

  close(): void {
    this.transport.close();
  }
}

const smtpCode = (response: unknown): number | undefined => {
  const match = typeof response === 'string' ? /^(\d{3})/.exec(response) : null;
  return match ? Number(match[1]) : undefined;
};
