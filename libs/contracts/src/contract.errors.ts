export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `data.responses.1.model`. */
  field: string;
  reason: string;
}

export type ContractViolationCode = 'INVALID_JSON' | 'INVALID_ENVELOPE' | 'INVALID_PAYLOAD' | 'UNKNOWN_MESSAGE_TYPE';

/** An incoming message (or request body) that does not satisfy its contract. Never retried: dead-letter it. */
export class ContractViolation extends Error {
  constructor(
    readonly code: ContractViolationCode,
    readonly issues: FieldIssue[],
  ) {
    super(`${code}: ${issues.map((i) => `${i.field} ${i.reason}`).join('; ')}`);
    this.name = 'ContractViolation';
  }
}
