import type { LookupAddress } from 'node:dns';
import { BlockedDestinationError, guardedLookup, isAllowlisted, isPublicAddress, literalHostProblem } from './ssrf.guard';
import { WebhookSender } from './webhook.client';

const resolver = (addresses: LookupAddress[]) =>
  (_host: string, _options: object, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => callback(null, addresses);

const lookupResult = (lookup: ReturnType<typeof guardedLookup>, host: string, all = false) =>
  new Promise<{ error: Error | null; address: unknown }>((resolve) => lookup(host, { all }, (error, address) => resolve({ error, address })));

describe('SSRF guard', () => {
  it.each(['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '224.0.0.1'])(
    '%s is not public', (address) => expect(isPublicAddress(address)).toBe(false),
  );

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])('%s is public', (address) => expect(isPublicAddress(address)).toBe(true));

  it('allowlists by exact host, IP literal or CIDR', () => {
    expect(isAllowlisted('127.0.0.1', ['127.0.0.1'])).toBe(true);
    expect(isAllowlisted('hooks.internal', ['hooks.internal'])).toBe(true);
    expect(isAllowlisted('10.2.3.4', ['10.0.0.0/8'])).toBe(true);
    expect(isAllowlisted('[::1]', ['::1'])).toBe(true);
    expect(isAllowlisted('11.2.3.4', ['10.0.0.0/8'])).toBe(false);
    expect(isAllowlisted('evil.hooks.internal', ['hooks.internal'])).toBe(false);
  });

  it('refuses literal private hosts and localhost at settings time', () => {
    expect(literalHostProblem('169.254.169.254', [])).toMatch(/linkLocal/);
    expect(literalHostProblem('localhost', [])).toMatch(/localhost/);
    // A fully qualified name's trailing dot names the same host.
    expect(literalHostProblem('localhost.', [])).toMatch(/localhost/);
    expect(literalHostProblem('api.localhost.', [])).toMatch(/localhost/);
    expect(literalHostProblem('127.0.0.1', ['127.0.0.1'])).toBeUndefined();
    expect(literalHostProblem('hooks.example.com', [])).toBeUndefined();
  });

  it('refuses a name that resolves to any private address, unless allowlisted', async () => {
    const mixed = resolver([{ address: '93.184.216.34', family: 4 }, { address: '10.0.0.7', family: 4 }]);
    const refused = await lookupResult(guardedLookup([], mixed), 'rebind.example.com');
    expect(refused.error).toBeInstanceOf(BlockedDestinationError);
    // The refusal is shown in the delivery log to the account's keys: it names no address the name resolved to (the
    // cluster's DNS would otherwise map internal names to their addresses for anyone who can set a webhook URL).
    expect(refused.error?.message).not.toContain('10.0.0.7');
    expect(refused.error?.message).toContain('rebind.example.com');
    const allowed = await lookupResult(guardedLookup(['rebind.example.com'], mixed), 'rebind.example.com');
    expect(allowed).toEqual({ error: null, address: '93.184.216.34' });
    const all = await lookupResult(guardedLookup([], resolver([{ address: '93.184.216.34', family: 4 }])), 'ok.example.com', true);
    expect(all.address).toEqual([{ address: '93.184.216.34', family: 4 }]);
  });

  it('the webhook sender refuses loopback destinations that are not allowlisted, without retrying', async () => {
    const sender = new WebhookSender({ allowlist: [] });
    const content = { notificationId: 'ntf_1', type: 'low_credit', accountId: 'a', eventId: 'e', occurredAt: '2026-11-21T10:00:00Z' } as const;
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    await expect(sender.send('https://127.0.0.1:1/x', secret, content, new Date(), 1_000)).resolves.toMatchObject({ kind: 'permanent', error: expect.stringMatching(/loopback/) });
    await expect(sender.send('https://localhost:1/x', secret, content, new Date(), 1_000)).resolves.toMatchObject({ kind: 'permanent', error: expect.stringMatching(/loopback/) });
    await expect(sender.send('http://93.184.216.34/x', secret, content, new Date(), 1_000)).resolves.toMatchObject({ kind: 'permanent', error: 'webhook URL must use https' });
  });
});
