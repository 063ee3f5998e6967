import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiErrors, ApiIdParam, hijackReply, PortalReadable, RequireScope } from '@tally/shared';
import { BalanceReadRepository, type ProjectedBalance } from './balance.repository';
import { BalanceNotifications } from './balance-notifications.service';

/** A comment line every so often keeps proxies and load balancers from closing an idle stream. */
export const SSE_HEARTBEAT_MS = 15_000;

@ApiBearerAuth()
@ApiIdParam('accountId')
@Controller('v1/accounts/:accountId/balance/stream')
export class BalanceStreamController {
  constructor(
    private readonly balances: BalanceReadRepository,
    private readonly notifications: BalanceNotifications,
  ) {}

  /** Server-sent events: `event: balance` with the current balance, then again after every change. */
  @Get()
  @RequireScope('accounts:read')
  @PortalReadable()
  @ApiOperation({ operationId: 'streamBalance', summary: 'Server-sent events: the balance now, then after every change' })
  @ApiOkResponse({
    description: 'An event stream: `event: balance`, `id:` the stream version, `data:` the projected balance (JSON); a comment line every 15 s',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiErrors({ 404: ['ACCOUNT_NOT_FOUND'] })
  async stream(@Param('accountId') accountId: string, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.balances.require(accountId);

    const res = reply.raw;
    let lastVersion = 0;
    const send = (balance: ProjectedBalance) => {
      // Notifications and the first read can race; the stream only ever moves forward.
      if (balance.streamVersion <= lastVersion || res.writableEnded) return;
      lastVersion = balance.streamVersion;
      res.write(`event: balance\nid: ${balance.streamVersion}\ndata: ${JSON.stringify(balance)}\n\n`);
    };
    // Subscribe (LISTEN active) before reading, so no change between the read and the subscription is lost.
    const unsubscribe = await this.notifications.subscribe(accountId, send);
    // From here on the handler writes the event stream on the Node response itself; Fastify must not send.
    hijackReply(reply);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 3000\n\n');

    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), SSE_HEARTBEAT_MS);
    const close = () => {
      clearInterval(heartbeat);
      unsubscribe();
    };
    // The response's close means the client went away (or the server is shutting down).
    res.on('close', close);
    res.on('error', close);
    if (req.socket.destroyed) close();

    const current = await this.balances.find(accountId).catch(() => undefined);
    if (current) send(current);
  }
}
