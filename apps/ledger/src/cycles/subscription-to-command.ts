import type { CycleStartedV1, PlanChangedV1 } from '@tally/contracts';
import type { ChangePlan, StartCycle } from '@tally/ledger-domain';
import { parseCredits } from '@tally/money';
import { Rejection, type ToCommand } from '../consumers/ledger-command.consumer';

/**
 * subscription.events.v1 → account commands. CycleStarted resets the allowance (expire the rest, settle any
 * overdraft, grant the new allocation, re-arm thresholds), idempotent by cycle id; PlanChanged updates the rules.
 */
export const subscriptionToCommand: ToCommand = ({ envelope, data }) => {
  switch (envelope.type) {
    case 'CycleStarted': {
      const cycle = data as CycleStartedV1;
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
      const change = data as PlanChangedV1;
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
    default:
      throw new Rejection('UNKNOWN_MESSAGE_TYPE', { type: envelope.type });
  }
};
