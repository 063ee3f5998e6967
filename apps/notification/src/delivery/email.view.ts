import { DateTime } from 'luxon';
import { formatCredits, parseCredits } from '@tally/money';
import type { NotificationContent } from '../notification-type.model';

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

export interface EmailLinks {
  /** Where to buy credits or upgrade. */
  billingUrl: string;
}

const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** "2026-12-01T00:00:00Z" → "1 December 2026, 00:00 UTC"; emails cannot know the reader's zone. */
export const formatDate = (iso: string): string =>
  DateTime.fromISO(iso, { zone: 'utc' }).toFormat("d LLLL yyyy, HH:mm 'UTC'");

interface Parts {
  subject: string;
  headline: string;
  facts: [string, string][];
  action: string;
}

function parts(content: NotificationContent, links: EmailLinks): Parts {
  const resets: [string, string][] = content.resetsAt ? [['Allowance resets', formatDate(content.resetsAt)]] : [];
  switch (content.type) {
    case 'low_credit':
      return {
        subject: `Your credits are below ${content.thresholdPercent}%`,
        headline: `Your account has used more than ${100 - (content.thresholdPercent ?? 0)}% of this cycle's credits.`,
        facts: [['Available', `${content.available} credits`], ['Monthly allocation', `${content.allocation} credits`], ...resets],
        action: `To keep working without interruption, buy a credit pack or upgrade your plan: ${links.billingUrl}`,
      };
    case 'credits_depleted':
      return {
        subject: 'You are out of credits',
        headline: 'Your account has no credits left; new AI requests will be refused until credits are added.',
        facts: [['Available', '0 credits'], ...(content.allocation ? [['Monthly allocation', `${content.allocation} credits`] as [string, string]] : []), ...resets],
        action: `Buy a credit pack or upgrade your plan to continue right away: ${links.billingUrl}`,
      };
    case 'credits_renewed':
      return {
        subject: 'Your credits were renewed',
        // From CycleStarted, before the allowance paid any debt carried: how much of it is left to spend is not known.
        headline: `A new billing cycle started with an allowance of ${content.allocation} credits. Any usage beyond your credits that your account carried from before is paid from it first.`,
        facts: [['Allocation', `${content.allocation} credits`], ['Cycle', `${formatDate(content.periodStart ?? content.occurredAt)} – ${formatDate(content.periodEnd ?? content.occurredAt)}`], ...resets],
        action: `Manage your plan: ${links.billingUrl}`,
      };
    case 'purchase_receipt': {
      const reference: [string, string][] = content.paymentReference ? [['Payment reference', content.paymentReference]] : [];
      const date: [string, string] = ['Date', formatDate(content.occurredAt)];
      const action = `See your balance and history: ${links.billingUrl}`;
      if (content.overdraftSettled === undefined) {
        return {
          subject: 'Receipt: credits added to your account',
          headline: `${content.amount} credits were added to your account. Purchased credits never expire.`,
          facts: [['Credits added', `${content.amount} credits`], ...reference, date],
          action,
        };
      }
      // Part of the purchase paid what the account owed (usage beyond its credits): only the rest is in the balance.
      const added = formatCredits(parseCredits(content.amount ?? '0') - parseCredits(content.overdraftSettled));
      return {
        subject: 'Receipt: credits bought for your account',
        headline: `${content.amount} credits were bought: ${content.overdraftSettled} paid what the account owed and ${added} were added to its balance. Purchased credits never expire.`,
        facts: [
          ['Credits bought', `${content.amount} credits`],
          ['Paid what the account owed', `${content.overdraftSettled} credits`],
          ['Added to the balance', `${added} credits`],
          ...reference,
          date,
        ],
        action,
      };
    }
  }
}

/** Plain-text and HTML bodies of one notification; every value in the HTML is escaped. */
export function renderEmail(content: NotificationContent, links: EmailLinks): RenderedEmail {
  const { subject, headline, facts, action } = parts(content, links);
  const text = [headline, '', ...facts.map(([label, value]) => `${label}: ${value}`), '', action, '', `Account: ${content.accountId}`].join('\n');
  const rows = facts.map(([label, value]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`).join('');
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<p>${escapeHtml(headline)}</p>`,
    `<table cellpadding="4">${rows}</table>`,
    `<p><a href="${escapeHtml(links.billingUrl)}">Buy credits or upgrade your plan</a></p>`,
    `<p style="color:#666">Account: ${escapeHtml(content.accountId)}</p>`,
    '</body></html>',
  ].join('');
  return { subject, text, html };
}
