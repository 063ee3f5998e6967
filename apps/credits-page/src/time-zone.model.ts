/**
 * The account's time zone: the portal token's `timeZone` claim when it names a zone this browser knows, else the
 * browser's own. Reset times are shown in it, with the zone named, so "resets on 1 June at 00:00" is unambiguous.
 */
export function resolveTimeZone(claim: string | null | undefined, fallback = browserTimeZone()): { timeZone: string; fromAccount: boolean } {
  if (claim && isKnownTimeZone(claim)) return { timeZone: claim, fromAccount: true };
  return { timeZone: fallback, fromAccount: false };
}

export function browserTimeZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function isKnownTimeZone(zone: string): boolean {
  // IANA names only, as the ledger takes them when it mints a token (POSIX-style PST8PDT and GMT+0 included):
  // offsets such as +02:00 are refused (Node 24's ICU accepts them; the ledger does not).
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** "Sat, 1 Jun 2026, 00:00 GMT+2" style date and time of an instant in a zone, and the zone's short name. */
export function formatInstant(iso: string, timeZone: string, locale?: string): { text: string; zone: string } | undefined {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return undefined;
  const text = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(date);
  const zone =
    new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: 'short' }).formatToParts(date).find((part) => part.type === 'timeZoneName')?.value ?? timeZone;
  return { text, zone };
}

/** A calendar day (`YYYY-MM-DD`, a day of whichever zone it was counted in) as the locale writes it. */
export function formatDay(day: string, locale?: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? day : new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(date);
}
