/**
 * What a person reads for each entry of the transaction history: a title (what happened) and its cause (the
 * model and feature of a usage, the pack of a purchase, a cycle reset, an expiry), from the entry's `type` and
 * `details` as `GET /transactions` returns them (libs/ledger-read-models transactionOf).
 */
export interface TransactionEntry {
  type: string;
  details: Record<string, unknown>;
}

export interface Cause {
  title: string;
  cause: string;
  /** A short tag for styling and tests: usage, purchase, allowance, promotion, expiry, reset, hold, overdraft, cycle, correction. */
  kind: string;
}

const FEATURES: Record<string, string> = { chat: 'Chat', agent: 'Agent', image: 'Image', video: 'Video', council: 'Council mode' };

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

export function featureLabel(feature: string): string {
  return FEATURES[feature] ?? feature.charAt(0).toUpperCase() + feature.slice(1);
}

/** `pack:starter-1000` → `starter-1000`; `promo:welcome` → `welcome`; `plan:pro` → `pro`. */
const afterPrefix = (source: string | undefined, prefix: string): string | undefined =>
  source?.startsWith(`${prefix}:`) ? source.slice(prefix.length + 1) : undefined;

/** An instant as a date and time in the zone the page shows times in (the account's), so the day is the reader's. */
const instantOf = (iso: unknown, locale: string | undefined, timeZone: string): string | undefined => {
  const value = str(iso);
  const date = value ? new Date(value) : undefined;
  return date && !Number.isNaN(date.getTime()) ? new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(date) : undefined;
};

export interface CauseOptions {
  unit?: string;
  locale?: string;
  /** The zone the page shows times in (the account's, else the browser's); UTC when not given. */
  timeZone?: string;
}

export function transactionCause(entry: TransactionEntry, { unit = 'credits', locale, timeZone = 'UTC' }: CauseOptions = {}): Cause {
  const d = entry.details ?? {};
  switch (entry.type) {
    case 'UsageDebited': {
      const models = Array.isArray(d.models) ? d.models.filter((m): m is string => typeof m === 'string') : [];
      const feature = str(d.feature);
      return {
        title: feature ? featureLabel(feature) : 'Usage',
        cause: models.length > 0 ? models.join(' + ') : 'AI usage',
        kind: 'usage',
      };
    }
    case 'CreditsGranted': {
      const source = str(d.source);
      if (d.kind === 'allowance') {
        const plan = afterPrefix(source, 'plan');
        return { title: 'Plan allowance', cause: plan ? `Monthly ${unit} of plan ${plan}` : `Monthly ${unit} of your plan`, kind: 'allowance' };
      }
      if (d.kind === 'purchased') {
        const pack = afterPrefix(source, 'pack');
        return { title: 'Purchase', cause: pack ? `Pack ${pack}` : `${unit.charAt(0).toUpperCase()}${unit.slice(1)} bought`, kind: 'purchase' };
      }
      const until = instantOf(d.expiresAt, locale, timeZone);
      const reason = afterPrefix(source, 'promo');
      return { title: 'Promotional grant', cause: [reason, until ? `expires ${until}` : 'no expiry'].filter(Boolean).join(' · '), kind: 'promotion' };
    }
    case 'CreditsExpired': {
      const what = d.kind === 'allowance' ? 'Unused allowance' : d.kind === 'promotional' ? 'Promotional credits' : `${unit.charAt(0).toUpperCase()}${unit.slice(1)}`;
      if (d.reason === 'cycle-reset') return { title: 'Cycle reset', cause: `${what} ended with the billing cycle`, kind: 'reset' };
      if (d.reason === 'plan-change') return { title: 'Plan change', cause: `${what} ended with the plan change`, kind: 'reset' };
      return { title: 'Expired', cause: `${what} reached their expiry date`, kind: 'expiry' };
    }
    case 'CycleStarted':
      return { title: 'New billing cycle', cause: str(d.planId) ? `Plan ${str(d.planId)}` : 'Billing cycle started', kind: 'cycle' };
    case 'HoldPlaced':
      return { title: 'Reserved', cause: 'Set aside for an answer in progress', kind: 'hold' };
    case 'HoldSettled':
      return { title: 'Reservation settled', cause: 'The answer finished; its actual usage is charged', kind: 'hold' };
    case 'HoldReleased':
      return { title: 'Reservation released', cause: d.reason === 'expired' ? 'The reservation timed out' : 'The answer did not run', kind: 'hold' };
    case 'OverdraftIncurred':
      return { title: 'Overdraft', cause: 'Usage beyond the balance, paid back from the next credits', kind: 'overdraft' };
    case 'OverdraftSettled':
      return { title: 'Overdraft paid back', cause: d.fromBucket === true ? 'From credits you already had' : 'From the credits that arrived', kind: 'overdraft' };
    case 'OverdraftWrittenOff':
      return { title: 'Overdraft forgiven', cause: 'Written off by your plan', kind: 'overdraft' };
    case 'UsageRefunded':
      return { title: 'Refund', cause: str(d.reason) ?? 'Usage refunded', kind: 'correction' };
    case 'GrantVoided': {
      const what = d.kind === 'allowance' ? 'Allowance' : d.kind === 'promotional' ? 'Promotional grant' : 'Purchase';
      return { title: `${what} cancelled`, cause: str(d.reason) ?? 'Cancelled by support', kind: 'correction' };
    }
    default:
      return { title: entry.type.replace(/([a-z])([A-Z])/g, '$1 $2'), cause: '', kind: 'other' };
  }
}
