import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { exchange, type ApiOperation, type OpenApiContract } from './openapi-contract.harness';
import { ECHO_MARKER, fuzzRequests, type FuzzContext, type FuzzRequest } from './openapi-fuzz.fixtures';

/** Runs per operation (FUZZ_RUNS, default 100) and the seed (FC_SEED to replay a failure; random otherwise). */
export const fuzzSettings = (): { runs: number; seed: number } => ({
  runs: Number(process.env.FUZZ_RUNS ?? 100),
  seed: process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31),
});

export interface FuzzOptions extends Omit<FuzzContext, 'contract'> {
  contract: OpenApiContract;
  baseUrl: string;
  /** What a refused request must leave unchanged (rows, offsets, a digest of the account's events …). */
  stored: () => Promise<unknown>;
  runs?: number;
  seed?: number;
  /** Operations not to fuzz, each with the reason (e.g. an event stream, which never ends). */
  skip?: Record<string, string>;
}

export interface FuzzReport {
  seed: number;
  /** operationId → status → count. */
  statuses: Record<string, Record<number, number>>;
  requests: number;
}

/** What is wrong with one answer to a fuzz request, or undefined. */
async function problemOf(options: FuzzOptions, operation: ApiOperation, request: FuzzRequest, report: FuzzReport): Promise<string | undefined> {
  const before = await options.stored();
  const answer = await exchange(options.baseUrl, request);
  const counts = (report.statuses[operation.operationId] ??= {});
  counts[answer.status] = (counts[answer.status] ?? 0) + 1;
  report.requests += 1;
  const where = `${request.label}: ${request.method} ${request.path.slice(0, 120)} → ${answer.status} ${answer.text.slice(0, 300)}`;
  if (answer.status < 0 || answer.status >= 500) return `server error or dropped connection: ${where}`;
  if (request.mustRefuse && answer.status < 400) return `accepted a request the document refuses: ${where}`;
  const mismatch = options.contract.problemWith(operation, answer);
  if (mismatch) return `answer not in the document: ${mismatch} (request ${request.label})`;
  if (answer.status >= 400) {
    if (answer.text.includes(ECHO_MARKER)) return `refusal quotes the input: ${where}`;
    const after = await options.stored();
    if (!isDeepStrictEqual(before, after)) return `refused but stored something (${JSON.stringify(before)} → ${JSON.stringify(after)}): ${where}`;
  }
  return undefined;
}

/**
 * The HTTP fuzzer: for every operation of the service's document, `runs` requests generated from the document
 * (fuzzRequests: valid and mutated) against the running service. Each answer must be no 5xx, a status and body
 * the document describes (so an error is in the one error shape with a code the document lists for that status),
 * a refusal for what the document refuses, no quoted input, and nothing stored for a refused request. Throws
 * with the operation, the failing request (shrunk by fast-check) and the seed to replay it (FC_SEED).
 */
export async function fuzzOperations(options: FuzzOptions): Promise<FuzzReport> {
  const { runs, seed } = { ...fuzzSettings(), ...(options.runs !== undefined ? { runs: options.runs } : {}), ...(options.seed !== undefined ? { seed: options.seed } : {}) };
  const report: FuzzReport = { seed, statuses: {}, requests: 0 };
  for (const operation of options.contract.operations) {
    if (operation.operationId in (options.skip ?? {})) continue;
    const property = fc.asyncProperty(fuzzRequests(operation, options), async (request) => {
      const problem = await problemOf(options, operation, request, report);
      if (problem) throw new Error(problem);
    });
    // An operation that takes no input (the health probes) can only vary by its headers: a tenth of the runs.
    const takesInput = operation.secured || operation.bodySchema !== undefined || (operation.operation.parameters ?? []).length > 0;
    const details = await fc.check(property, { numRuns: takesInput ? runs : Math.ceil(runs / 10), seed, endOnFailure: false, maxSkipsPerRun: 1000 });
    if (details.failed) {
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(`fuzzing ${operation.operationId} failed after ${details.numRuns} runs (replay: FC_SEED=${seed}, path ${details.counterexamplePath}):\n${error}`);
    }
  }
  return report;
}
