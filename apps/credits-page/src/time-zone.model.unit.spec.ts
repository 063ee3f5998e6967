import { formatInstant, isKnownTimeZone, resolveTimeZone } from './time-zone.model';

describe('time zones', () => {
  it('uses the token claim when it is an IANA zone, else the browser zone', () => {
    expect(resolveTimeZone('Asia/Tokyo', 'Europe/Paris')).toEqual({ timeZone: 'Asia/Tokyo', fromAccount: true });
    expect(resolveTimeZone('+02:00', 'Europe/Paris')).toEqual({ timeZone: 'Europe/Paris', fromAccount: false });
    expect(resolveTimeZone(undefined, 'Europe/Paris')).toEqual({ timeZone: 'Europe/Paris', fromAccount: false });
    expect(isKnownTimeZone('Mars/Olympus')).toBe(false);
    // Every zone the ledger mints a token with (IANA names, not offsets), POSIX-style names among them.
    expect(['PST8PDT', 'EST5EDT', 'Etc/GMT+5', 'GMT+0', 'UTC'].filter((zone) => !isKnownTimeZone(zone))).toEqual([]);
    expect(['+02:00', '-05:00', '\u221205:00'].filter((zone) => isKnownTimeZone(zone))).toEqual([]);
  });

  it('shows the reset instant in the zone, naming it', () => {
    expect(formatInstant('2026-06-01T00:00:00Z', 'Asia/Tokyo', 'en-GB')).toEqual({ text: '1 Jun 2026, 09:00', zone: 'GMT+9' });
    expect(formatInstant('2026-06-01T00:00:00Z', 'UTC', 'en-GB')).toEqual({ text: '1 Jun 2026, 00:00', zone: 'UTC' });
    expect(formatInstant('not a date', 'UTC')).toBeUndefined();
  });
});
