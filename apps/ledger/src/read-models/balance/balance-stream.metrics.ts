import { gauge } from '@tally/metrics';

/** Live balance streams this instance holds open (every caller), against BALANCE_STREAMS_MAX. */
export const balanceStreamsOpen = gauge({
  name: 'tally_ledger_balance_streams_open',
  help: 'Live balance streams (server-sent events) this ledger instance holds open, of every caller; refused past BALANCE_STREAMS_MAX.',
});
