import { connect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { carrierHeaders, carrierOf } from '@tally/shared';
import type { NotificationConfig } from '../config/notification.config';
import type { NotificationContent } from '../notification-type.model';
import { renderEmail } from './email.view';
import { isPermanentSmtpFailure, withoutAddresses, type AttemptOutcome } from './retry.schedule';

/**
 * Sends notification emails over SMTP (host, port, TLS and auth from config), each within a deadline.
 *
 * nodemailer's timeouts are per idle period, and its transport has no way to abort a send; so every send gets a
 * transport of its own whose socket this class opens (nodemailer's `getSocket` hook, the one it offers for proxies;
 * nodemailer still does the TLS, STARTTLS and SMTP on it) and destroys at the deadline. The connection then ends
 * before the server's answer to the message, and an SMTP server delivers nothing it has not answered 250 to.
 */
export class Mailer {
  private readonly options: SMTPTransport.Options;

  constructor(private readonly config: NotificationConfig) {
    this.options = {
      host: config.SMTP_HOST,
      port: config.SMTP_PORT,
      secure: config.SMTP_SECURE,
      // Credentials only over TLS: an upgrade the server does not offer fails the attempt (retried) instead.
      requireTLS: !config.SMTP_SECURE && (config.SMTP_REQUIRE_TLS ?? config.SMTP_USER !== undefined),
      auth: config.SMTP_USER ? { user: config.SMTP_USER, pass: config.SMTP_PASSWORD ?? '' } : undefined,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    };
  }

  /** One email; the attempt ends within `deadlineMs` whatever the server does. */
  async send(to: string, content: NotificationContent, deadlineMs: number): Promise<AttemptOutcome> {
    const email = renderEmail(content, { billingUrl: this.config.BILLING_URL });
    let socket: Socket | undefined;
    let expired = false;
    const deadlineError = () => new Error(`no answer to the message within ${deadlineMs} ms`);
    const options: SMTPTransport.Options = {
      ...this.options,
      getSocket: (_options, callback) => {
        if (expired) return callback(deadlineError(), undefined);
        socket = connect({ host: this.config.SMTP_HOST, port: this.config.SMTP_PORT });
        callback(null, { connection: socket });
      },
    };
    const transport = nodemailer.createTransport(options);
    const timer = setTimeout(() => {
      expired = true;
      socket?.destroy(deadlineError());
    }, deadlineMs);
    try {
      const info = await transport.sendMail({
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
      const failure = error as { responseCode?: number; command?: string; response?: string };
      const code = failure.responseCode;
      const message = withoutAddresses(error instanceof Error ? error.message : String(error));
      if (isPermanentSmtpFailure(failure)) return { kind: 'permanent', statusCode: code, error: message };
      // No SMTP reply (refused, unresolved, TLS; the deadline says so itself): the message names the operator's mail
      // server and its network, which the delivery log's readers must not see; the operator's log gets it whole.
      if (code === undefined && !expired) return { kind: 'retryable', error: 'the mail server could not be reached', detail: message };
      return { kind: 'retryable', statusCode: code, error: message };
    } finally {
      clearTimeout(timer);
      transport.close();
    }
  }
}

const smtpCode = (response: unknown): number | undefined => {
  const match = typeof response === 'string' ? /^(\d{3})/.exec(response) : null;
  return match ? Number(match[1]) : undefined;
};
