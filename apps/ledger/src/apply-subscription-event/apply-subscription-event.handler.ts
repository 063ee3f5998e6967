import { Topics } from '@tally/contracts';
import type { ChangePlan, StartCycle } from '@tally/ledger-domain';
import { parseCredits } from '@tally/money';
import { Rejection, type ToCommand } from '../accounts/account.commands';

/**
 * subscription.events.v1 → account commands. CycleStarted resets the allowance (expire the rest, settle any
 * overdraft, grant the new allocation, re-arm thresholds), idempotent by cycle id; PlanChanged updates the rules.
 */
export const subscriptionToCommand: ToCommand = (message) => {
  // The consumer is wired to subscription.events.v1; a message of another topic is not a subscription fact.
  if (message.topic !== Topics.subscriptionEvents) throw new Rejection('UNKNOWN_MESSAGE_TYPE', { topic: message.topic, type: message.type });
  const { envelope } = message;
  switch (message.type) {
    case 'CycleStarted': {
      const cycle = message.data;
      const command: StartCycle = {
        type: 'StartCycle',
        accountId: envelope.accountId,
        cycleId: cycle.cycleId,
        planId: cycle.planId,
        periodStart: cycle.periodStart,
        periodEnd: cycle.periodEnd,
        allocation: parseCredits(cycle.allocation),
        unlimited: cycle.unlimited,
        thresholds: cycle.thresholds,
        overdraftPolicy: cycle.overdraftPolicy,
      };
      return { command, commandKey: `cycle:${cycle.cycleId}` };
    }
    case 'PlanChanged': {
      const change = message.data;
      const command: ChangePlan = {
        type: 'ChangePlan',
        accountId: envelope.accountId,
        changeId: change.changeId,
        planId: change.planId,
        unlimited: change.unlimited,
        thresholds: change.thresholds,
        overdraftPolicy: change.overdraftPolicy,
      };
      return { command, commandKey: `plan:${change.changeId}` };
    }
    default: {
      // parseMessage refuses unknown types; this keeps a new subscription message from being forgotten here.
      const unknown: never = message;
      throw new Rejection('UNKNOWN_MESSAGE_TYPE', { type: (unknown as { type: string }).type });
    }
  }
};
