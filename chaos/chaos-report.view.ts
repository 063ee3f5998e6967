import type { ChaosSettings } from './chaos.config';
import { replayCommand } from './chaos.config';
import type { InjectedFault } from './fault.schedule';
import type { InvariantResult } from './invariants.harness';

export interface ChaosReport {
  settings: ChaosSettings;
  startedAt: number;
  /** When the load started and when its last request was acknowledged. */
  load: { from: number; until: number };
  sent: { distinctUsage: number; usageMessages: number; httpRequests: number; kafkaSends: number; resends: number; steps: number; poison: number; holdsPlaced: number; holdsRefused: number };
  faults: InjectedFault[];
  lag: { name: string; afterLastFaultMs?: number; afterLoadMs?: number }[];
  fiveHundreds: { total: number; windows: { from: number; until: number; count: number; services: string; codes: string }[] };
  noAnswer: number;
  invariants: InvariantResult[];
  passed: boolean;
  durationMs: number;
  logDir: string;
}

const pad = (rows: string[][]): string => {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r, n) => {
    const line = `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
    return n === 0 ? `${line}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|` : line;
  }).join('\n');
};
const seconds = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);

/** The report as printed (Markdown tables, so the README can carry it as is). */
export function formatReport(report: ChaosReport): string {
  const { settings, startedAt } = report;
  const t = (at: number) => `+${((at - startedAt) / 1000).toFixed(1)} s`;
  const out: string[] = [];
  out.push(`chaos: seed ${settings.seed} — ${report.passed ? 'PASSED' : 'FAILED'} in ${seconds(report.durationMs)}`);
  out.push(`replay: ${replayCommand(settings)}`);
  out.push(`knobs: CHAOS_SEED=${settings.seed} CHAOS_EVENTS=${settings.events} CHAOS_ACCOUNTS=${settings.accounts} CHAOS_FAULTS=${settings.faults}${settings.short ? ' CHAOS_SHORT=1' : ''}`);
  out.push('');
  const s = report.sent;
  out.push(pad([
    ['sent', 'count'],
    ['distinct usage events acknowledged (HTTP + Kafka-direct, hold settlements included)', String(s.distinctUsage)],
    ['usage messages sent (duplicates, redeliveries and resends included)', String(s.usageMessages)],
    ['HTTP requests', String(s.httpRequests)],
    ['Kafka-direct sends', String(s.kafkaSends)],
    ['unsure requests sent again (same key)', String(s.resends)],
    ['workload steps (usage batches, grants, purchases, holds, authorizations, upgrades)', String(s.steps)],
    ['holds placed / refused (402)', `${s.holdsPlaced} / ${s.holdsRefused}`],
    ['poison messages', String(s.poison)],
    ['load', `${t(report.load.from)} → ${t(report.load.until)}`],
  ]));
  out.push('');
  out.push(pad([['#', 'fault', 'from', 'to', 'what happened'], ...report.faults.map((f, i) => [String(i + 1), f.label, t(f.startedAt), t(f.endedAt), f.detail])]));
  out.push('');
  out.push(pad([['consumer group', 'lag 0 after the last fault', 'after the load\'s end'], ...report.lag.map((l) => [l.name, seconds(l.afterLastFaultMs), seconds(l.afterLoadMs)])]));
  out.push('');
  out.push(`5xx answers: ${report.fiveHundreds.total}; requests with no answer (process killed or paused): ${report.noAnswer}`);
  if (report.fiveHundreds.windows.length > 0) {
    out.push(pad([['5xx window', 'count', 'services', 'codes'], ...report.fiveHundreds.windows.map((w) => [`${t(w.from)} → ${t(w.until)}`, String(w.count), w.services, w.codes])]));
  }
  out.push('');
  out.push(pad([['invariant', 'checked', 'failures', 'result'], ...report.invariants.map((r) => [r.name, String(r.checked), String(r.failures), r.failures === 0 ? 'PASS' : 'FAIL'])]));
  for (const r of report.invariants) {
    for (const note of r.notes) out.push(`  ${r.name.split('.')[0]}. ${note}`);
    for (const example of r.examples) out.push(`  ${r.name.split('.')[0]}. FAIL ${example}`);
  }
  out.push('');
  out.push(`logs: ${report.logDir}`);
  out.push(`seed ${settings.seed}; replay: ${replayCommand(settings)}`);
  return out.join('\n');
}
