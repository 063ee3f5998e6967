import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import ipaddr from 'ipaddr.js';
import { Webhook } from 'standardwebhooks';
import { carrierHeaders, carrierOf } from '@tally/shared';
import { WEBHOOK_EVENT_TYPES, type NotificationContent } from '../notification-type.model';
import type { AttemptOutcome } from './retry.schedule';
import { isRetryableHttpStatus } from './retry.schedule';
import { BlockedDestinationError, addressRange, guardedLookup, isAllowlisted, isPublicAddress } from './ssrf.guard';

export interface WebhookSenderOptions {
  allowlist: readonly string[];
}

/** The JSON body of a webhook: a public contract (Standard Webhooks shape: type, timestamp, data). */
export function webhookBody(content: NotificationContent): string {
  const data: Record<string, unknown> = {
    accountId: content.accountId,
    cycleId: content.cycleId,
    thresholdPercent: content.thresholdPercent,
    available: content.available,
    allocation: content.allocation,
    resetsAt: content.resetsAt,
    periodStart: content.periodStart,
    periodEnd: content.periodEnd,
    planId: content.planId,
    amount: content.amount,
    overdraftSettled: content.overdraftSettled,
    paymentReference: content.paymentReference,
    ledgerEventId: content.eventId,
    // The ledger event's place in the account's stream: alerts sent concurrently arrive in any order; this is theirs.
    streamVersion: content.streamVersion,
  };
  for (const key of Object.keys(data)) if (data[key] === undefined) delete data[key];
  return JSON.stringify({ id: content.notificationId, type: WEBHOOK_EVENT_TYPES[content.type], timestamp: content.occurredAt, data });
}

/**
 * Signed Standard Webhooks POSTs with a deadline, no redirects, and SSRF protection. The receiver's status line is its
 * answer: the body is not read (the connection is closed), so a receiver that never ends its body cannot hold an
 * attempt past its deadline, nor past the dispatcher's lease.
 */
export class WebhookSender {
  constructor(private readonly options: WebhookSenderOptions) {}

  /** One webhook; the attempt ends within `deadlineMs` whatever the receiver does. */
  async send(url: string, secret: string, content: NotificationContent, now: Date, deadlineMs: number): Promise<AttemptOutcome> {
    const body = webhookBody(content);
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return { kind: 'permanent', error: 'invalid webhook URL' };
    }
    const allowlisted = isAllowlisted(target.hostname, this.options.allowlist);
    if (target.protocol !== 'https:' && !(target.protocol === 'http:' && allowlisted)) {
      return { kind: 'permanent', error: 'webhook URL must use https' };
    }
    // IP literals never go through `lookup`, so check them here.
    const bare = target.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!allowlisted && ipaddr.isValid(bare) && !isPublicAddress(bare)) {
      return { kind: 'permanent', error: new BlockedDestinationError(target.hostname, bare, addressRange(bare)).message };
    }
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Tally-Webhooks/1',
      'webhook-id': content.notificationId,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(content.notificationId, now, body),
      // The receiver can join the trace: traceparent / tracestate / x-request-id of the delivery's context.
      ...carrierHeaders(carrierOf()),
    };
    try {
      const status = await this.post(target, headers, body, deadlineMs);
      if (status >= 200 && status < 300) return { kind: 'delivered', statusCode: status };
      const error = `receiver answered ${status}`;
      return isRetryableHttpStatus(status) ? { kind: 'retryable', statusCode: status, error } : { kind: 'permanent', statusCode: status, error };
    } catch (error) {
      if (error instanceof BlockedDestinationError) return { kind: 'permanent', error: error.message };
      return { kind: 'retryable', error: error instanceof Error ? error.message : String(error) };
    }
  }

  private post(target: URL, headers: Record<string, string>, body: string, deadlineMs: number): Promise<number> {
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<number>((resolve, reject) => {
      const req = send(
        target,
        { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, lookup: guardedLookup(this.options.allowlist) as never },
        (res: IncomingMessage) => {
          clearTimeout(timer);
          resolve(res.statusCode ?? 0);
          res.destroy();
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.end(body);
    });
  }
}
