import { readFileSync } from 'node:fs';
import { PricingError, parseRateCard } from '@tally/pricing';
import { SubscriptionError, parseCatalogue } from '@tally/subscription-domain';
import { Command } from 'commander';
import { json, print, table } from '../output.view';

interface FileVerdict {
  file: string;
  kind: 'plans' | 'rate-card';
  ok: boolean;
  /** What the file holds when valid (versions, plans, packs, models). */
  summary?: Record<string, unknown>;
  /** The refused field (a path in the file) and why, as the services would refuse to boot on it. */
  refused?: { field: string; code: string; reason: string };
}

/** Parses with the services' own parsers: what passes here is what the services accept at boot. */
function check(kind: FileVerdict['kind'], file: string): FileVerdict {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { file, kind, ok: false, refused: { field: '(file)', code: 'UNREADABLE', reason: (error as Error).message } };
  }
  try {
    if (kind === 'plans') {
      const catalogue = parseCatalogue(text);
      return { file, kind, ok: true, summary: { version: catalogue.version, plans: [...catalogue.plans.keys()], packs: [...catalogue.packs.keys()], fallbackPlanId: catalogue.fallbackPlanId } };
    }
    const card = parseRateCard(text);
    return { file, kind, ok: true, summary: { versions: card.versions.map((v) => ({ version: v.version, effectiveFrom: v.effectiveFrom.toISOString(), models: [...v.models.keys()] })) } };
  } catch (error) {
    if (error instanceof PricingError || error instanceof SubscriptionError) {
      return { file, kind, ok: false, refused: { field: String(error.details.field ?? '(root)'), code: error.code, reason: error.message } };
    }
    throw error;
  }
}

/** `tally config validate`: a plan catalogue and a rate card checked before they are deployed. */
export function configFilesCommand(): Command {
  const command = new Command('config').description('configuration files the services load at boot (plan catalogue, rate card)');
  command
    .command('validate')
    .description(
      'validate a plan catalogue and/or a rate card with the parsers the services use (libs/subscription-domain, libs/pricing), printing the refused field ' +
        '(the parsers stop at the first problem of a file, so fix and run again) and what a valid file holds; exit code 1 if a file is refused',
    )
    .option('--plans <file>', 'a plan catalogue (PLANS_PATH, e.g. config/plans.yaml)')
    .option('--rate-card <file>', 'a rate card (RATE_CARD_PATH, e.g. config/rate-card.yaml)')
    .option('--json', 'as JSON')
    .addHelpText('after', '\nExample:\n  npm run tally -- config validate --plans config/plans.yaml --rate-card config/rate-card.yaml')
    .action((options: { plans?: string; rateCard?: string; json?: boolean }) => {
      if (!options.plans && !options.rateCard) throw new Error('give --plans <file>, --rate-card <file> or both');
      const verdicts = [...(options.plans ? [check('plans', options.plans)] : []), ...(options.rateCard ? [check('rate-card', options.rateCard)] : [])];
      if (options.json) print(json(verdicts));
      else {
        for (const verdict of verdicts) {
          print(verdict.ok ? `ok       ${verdict.kind} ${verdict.file}: ${JSON.stringify(verdict.summary)}` : `REFUSED  ${verdict.kind} ${verdict.file}`);
        }
        const refused = verdicts.filter((verdict) => verdict.refused);
        if (refused.length > 0) print(table(refused.map((v) => ({ file: v.file, field: v.refused?.field, code: v.refused?.code, reason: v.refused?.reason }))));
      }
      process.exitCode = verdicts.every((verdict) => verdict.ok) ? 0 : 1;
    });
  return command;
}
