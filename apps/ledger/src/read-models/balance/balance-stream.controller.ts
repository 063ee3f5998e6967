import { Controller, Get, Param, Query, Req, Res, type OnModuleDestroy } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiQuery } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiErrors, ApiIdParam, hijackReply, PortalGrantOf, PortalReadable, RequireScope, type PortalGrant } from '@tally/shared';
import { LedgerConfig } from '../../config/ledger.config';
import { LedgerError } from '../../ledger.errors';
import { invalidParam } from '../history/history.errors';
import { BalanceReadRepository, type ProjectedBalance } from './balance.repository';
import { BalanceNotifications } from './balance-notifications.service';
import { balanceStreamsOpen } from './balance-stream.metrics';

/** A comment line every so often keeps proxies and load balancers from closing an idle stream. */
export const SSE_HEARTBEAT_MS = 15_000;
/**
 * What a stream may hold unsent (its client reads slower than balances change, or stopped reading): past this it is
 * ended, so the process never buffers a stalled client's frames without limit; the client opens it again (`retry:`)
 * and its first frame is the balance now, which is all a live balance needs.
 */
export const SSE_MAX_BUFFERED_BYTES = 256 * 1024;
/** Live streams a portal token's account may hold open on one ledger instance (a browser tab needs one or two). */
export const PORTAL_STREAMS_PER_ACCOUNT = 5;
/** A stream key: what a client calls its stream, the same each time it opens it again (random, so nobody else's). */
export const STREAM_KEY_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/balance/stream')
export class BalanceStreamController implements OnModuleDestroy {
  /** Open streams per account, of portal tokens only (a service key's are counted by keyStreams). */
  private readonly portalStreams = new Map<string, number>();
  /** Open streams of every caller (BALANCE_STREAMS_MAX), counted from the check on, as portalStreams is. */
  private streams = 0;
  private readonly maxStreams: number;
  /** Open streams per API key id (a portal token's: the key that minted it), BALANCE_STREAMS_PER_KEY each. */
  private readonly keyStreams = new Map<string, number>();
  private readonly maxStreamsPerKey: number;
  /** How to end each open stream (a stream leaves the set when it closes). */
  private readonly open = new Set<() => void>();
  /**
   * The open streams a client named (`streamKey`), by account and key: how to drop each one at once. A client whose
   * connection died without closing (a laptop waking on another network, a phone leaving Wi-Fi) opens its stream again
   * under the same key; the old one would otherwise hold its slot until TCP gives up on it, about 15 minutes.
   */
  private readonly keyed = new Map<string, () => void>();
  private stopping = false;

  constructor(
    private readonly balances: BalanceReadRepository,
    private readonly notifications: BalanceNotifications,
    config: LedgerConfig,
  ) {
    this.maxStreams = config.BALANCE_STREAMS_MAX;
    this.maxStreamsPerKey = config.BALANCE_STREAMS_PER_KEY;
  }

  /**
   * Shutting down (SIGTERM): open streams end, so their clients reconnect (to another instance, `retry:` 3 s) and the
   * HTTP server can close, where it would otherwise wait for every credits page to close; new ones are refused.
   * Before the server closes: Nest runs this hook first.
   */
  onModuleDestroy(): void {
    this.stopping = true;
    for (const end of [...this.open]) end();
  }

  /** Server-sent events: `event: balance` with the current balance, then again after every change. */
  @Get()
  @RequireScope('accounts:read')
  @PortalReadable()
  @ApiOperation({ operationId: 'streamBalance', summary: 'Server-sent events: the balance now, then after every change' })
  @ApiOkResponse({
    description: 'An event stream: `event: balance`, `id:` the stream version, `data:` the projected balance (JSON); a comment line every 15 s',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiQuery({
    name: 'streamKey',
    required: false,
    description: 'A random key (16-64 letters, digits, _ or -) the client sends each time it opens this stream again: '
      + "the account's open stream under the same key is taken to be lost and ended, and gives its place to this one.",
    schema: { type: 'string', pattern: STREAM_KEY_PATTERN.source },
  })
  @ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'], 429: ['TOO_MANY_STREAMS'], 503: ['STREAMS_AT_CAPACITY', 'SHUTTING_DOWN'] })
  async stream(
    @Param('accountId') accountId: string,
    @PortalGrantOf() portal: PortalGrant | undefined,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
    @Query('streamKey') streamKey?: unknown,
  ): Promise<void> {
    if (this.stopping) throw new LedgerError('SHUTTING_DOWN', 'This ledger instance is shutting down; open the stream again (another instance answers).');
    if (streamKey !== undefined && (typeof streamKey !== 'string' || !STREAM_KEY_PATTERN.test(streamKey))) {
      throw invalidParam('streamKey', 'streamKey must be 16-64 letters, digits, _ or -');
    }
    await this.balances.require(accountId);
    const key = streamKey === undefined ? undefined : `${accountId}\n${streamKey}`;
    // The stream this one replaces ends now, and its slot is free before the count below.
    if (key !== undefined) this.keyed.get(key)?.();
    if (portal && (this.portalStreams.get(accountId) ?? 0) >= PORTAL_STREAMS_PER_ACCOUNT) {
      void reply.header('Retry-After', '5');
      throw new LedgerError('TOO_MANY_STREAMS', `This account already has ${PORTAL_STREAMS_PER_ACCOUNT} live balance streams open; close one first.`, {
        limit: PORTAL_STREAMS_PER_ACCOUNT,
      });
    }
    // One tenant's key must not take the instance's every stream from the others' credits pages.
    const caller = (portal ? portal.mintedBy : req.apiKeyId) ?? '';
    if ((this.keyStreams.get(caller) ?? 0) >= this.maxStreamsPerKey) {
      void reply.header('Retry-After', '5');
      throw new LedgerError('TOO_MANY_STREAMS', `This API key already holds ${this.maxStreamsPerKey} live balance streams on this ledger instance; close one first.`, {
        limit: this.maxStreamsPerKey,
      });
    }
    if (this.streams >= this.maxStreams) {
      void reply.header('Retry-After', '5');
      throw new LedgerError('STREAMS_AT_CAPACITY', `This ledger instance holds ${this.maxStreams} live balance streams; open the stream again shortly.`, {
        limit: this.maxStreams,
      });
    }
    // The slots are taken in the same tick as the checks: opens that wait together for the LISTEN connection (at the
    // first stream, or after a lost connection) would otherwise all pass the checks before any of them counted.
    if (portal) this.portalStreams.set(accountId, (this.portalStreams.get(accountId) ?? 0) + 1);
    this.streams += 1;
    this.keyStreams.set(caller, (this.keyStreams.get(caller) ?? 0) + 1);
    balanceStreamsOpen.inc();
    let holdsSlot = true;
    const releaseSlot = () => {
      if (!holdsSlot) return;
      holdsSlot = false;
      this.streams -= 1;
      balanceStreamsOpen.dec();
      const ofCaller = (this.keyStreams.get(caller) ?? 1) - 1;
      if (ofCaller > 0) this.keyStreams.set(caller, ofCaller);
      else this.keyStreams.delete(caller);
      if (!portal) return;
      const left = (this.portalStreams.get(accountId) ?? 1) - 1;
      if (left > 0) this.portalStreams.set(accountId, left);
      else this.portalStreams.delete(accountId);
    };

    const res = reply.raw;
    const forgetKey = () => {
      if (key !== undefined && this.keyed.get(key) === replaced) this.keyed.delete(key);
    };
    // Replaced by a stream under the same key: its slot goes back at once, its connection (most likely dead) is dropped.
    const replaced = () => {
      releaseSlot();
      forgetKey();
      res.destroy();
    };
    if (key !== undefined) this.keyed.set(key, replaced);
    let lastVersion = 0;
    // Nothing is written before the headers: a balance handed over while the subscription is set up (a LISTEN
    // reconnect re-reads the accounts it follows) would go out as a plain response, and the headers after it throw.
    // The first read below, after the headers, gives the balance then.
    let headersSent = false;
    const send = (balance: ProjectedBalance) => {
      // Notifications and the first read can race; the stream only ever moves forward.
      if (!headersSent || balance.streamVersion <= lastVersion || res.writableEnded) return;
      lastVersion = balance.streamVersion;
      write(`event: balance\nid: ${balance.streamVersion}\ndata: ${JSON.stringify(balance)}\n\n`);
    };
    const write = (frame: string) => {
      if (res.destroyed) return;
      res.write(frame);
      if (res.writableLength > SSE_MAX_BUFFERED_BYTES) res.destroy();
    };
    // Subscribe (LISTEN active) before reading, so no change between the read and the subscription is lost.
    let unsubscribe: () => void;
    try {
      unsubscribe = await this.notifications.subscribe(accountId, send);
    } catch (error) {
      releaseSlot();
      forgetKey();
      throw error;
    }
    // From here on the handler writes the event stream on the Node response itself; Fastify must not send.
    hijackReply(reply);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 3000\n\n');
    headersSent = true;

    const heartbeat = setInterval(() => write(': heartbeat\n\n'), SSE_HEARTBEAT_MS);
    // A portal token's stream lasts as long as the token: at its expiry the stream ends (the page mints a new one).
    const expiry = portal ? setTimeout(() => res.end(), Math.max(0, portal.expiresAt.getTime() - Date.now())) : undefined;
    let closed = false;
    const end = () => res.end();
    this.open.add(end);
    const close = () => {
      if (closed) return;
      closed = true;
      this.open.delete(end);
      clearInterval(heartbeat);
      clearTimeout(expiry);
      unsubscribe();
      releaseSlot();
      forgetKey();
    };
    // The response's close means the client went away (or the server is shutting down).
    res.on('close', close);
    res.on('error', close);
    if (req.socket.destroyed) close();
    // A stream that got past the check above while shutdown began ends like the others.
    if (this.stopping) end();

    // The first frame is the balance now; a stream that cannot read it ends, and its client opens it again (`retry:`).
    const current = await this.balances.find(accountId).catch(() => null);
    if (current === null) end();
    else if (current) send(current);
  }
}
