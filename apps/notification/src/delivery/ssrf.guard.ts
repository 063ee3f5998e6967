import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import ipaddr from 'ipaddr.js';

/**
 * A webhook destination we refuse to call (SSRF protection). Permanent: retrying would not change it. Its message is
 * shown in the delivery log to the account's keys: it names the kind of address, not the address a name resolved to
 * (which would map the cluster's internal names to their addresses for anyone who may set a webhook URL).
 */
export class BlockedDestinationError extends Error {
  constructor(readonly host: string, readonly address: string, readonly range: string) {
    super(`webhook host ${host} resolves to a ${range} address, which is not a public address`);
    this.name = 'BlockedDestinationError';
  }
}

const stripBrackets = (host: string) => host.replace(/^\[(.*)\]$/, '$1').toLowerCase();

/**
 * True when `host` (a URL hostname, IPv6 possibly in brackets) is on the allowlist: an exact host name, an IP
 * literal, or an address inside a CIDR entry ("10.0.0.0/8").
 */
export function isAllowlisted(host: string, allowlist: readonly string[]): boolean {
  const bare = stripBrackets(host);
  return allowlist.some((raw) => {
    const entry = stripBrackets(raw.trim());
    if (entry === bare) return true;
    if (!entry.includes('/') || !ipaddr.isValid(bare)) return false;
    try {
      const [range, bits] = ipaddr.parseCIDR(entry);
      const address = ipaddr.parse(bare);
      return address.kind() === range.kind() && address.match(range, bits);
    } catch {
      return false;
    }
  });
}

/** The ipaddr.js range of an IP address, IPv4-mapped IPv6 judged as the IPv4 inside. */
export function addressRange(address: string): string {
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  return parsed.range();
}

/** Only globally routable unicast is public; private, loopback, link-local, CGNAT, multicast, reserved… are not. */
export const isPublicAddress = (address: string): boolean => addressRange(address) === 'unicast';

/** For settings validation (no DNS): why a URL host can never be called, or undefined. */
export function literalHostProblem(host: string, allowlist: readonly string[]): string | undefined {
  if (isAllowlisted(host, allowlist)) return undefined;
  // A trailing dot (a fully qualified name) names the same host: `localhost.` is localhost.
  const bare = stripBrackets(host).replace(/\.$/, '');
  if (bare === 'localhost' || bare.endsWith('.localhost')) return 'must not point to localhost';
  if (ipaddr.isValid(bare) && !isPublicAddress(bare)) return `must not point to a ${addressRange(bare)} address`;
  return undefined;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
type Resolver = (hostname: string, options: LookupOptions & { all: true }, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * A `lookup` for http(s).request that resolves the host with dns.lookup and refuses non-public addresses
 * unless the host is allowlisted. The socket connects to the very address checked here, so a DNS answer
 * that changes between check and connect (rebinding) cannot slip through.
 */
export function guardedLookup(allowlist: readonly string[], resolve: Resolver = dnsLookup as unknown as Resolver) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      if (!isAllowlisted(hostname, allowlist)) {
        const blocked = addresses.find((entry) => !isPublicAddress(entry.address));
        if (blocked) return callback(new BlockedDestinationError(hostname, blocked.address, addressRange(blocked.address)) as NodeJS.ErrnoException, []);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
