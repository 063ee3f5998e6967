import type { FastifyReply, FastifyRequest } from 'fastify';
import { LedgerError } from '../../ledger.errors';
import type { BalanceReadRepository } from './balance.repository';
import type { BalanceNotifications } from './balance-notifications.service';
import { BalanceStreamController } from './balance-stream.controller';

describe('BalanceStreamController while the ledger shuts down', () => {
  it('refuses a new stream with SHUTTING_DOWN once shutdown began, before reading anything', async () => {
    // Given a controller whose module is being destroyed (SIGTERM); its dependencies must not be reached.
    const untouched = new Proxy({}, { get: (_, name) => { throw new Error(`reached ${String(name)}`); } });
    const controller = new BalanceStreamController(untouched as BalanceReadRepository, untouched as BalanceNotifications);
    controller.onModuleDestroy();

    // When a client opens a live balance stream
    const opened = controller.stream('acct-1', undefined, {} as FastifyRequest, {} as FastifyReply);

    // Then it is refused with the retryable code (503, Retry-After) and nothing else happens
    await expect(opened).rejects.toBeInstanceOf(LedgerError);
    await expect(opened).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});
