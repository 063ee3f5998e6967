import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * The project boundaries are enforced by lint (eslint.config.js + @nx/enforce-module-boundaries over the Nx
 * project graph). This proves the rule bites: the same file content is linted as if it lived in each project.
 */
describe('lint enforces the project boundaries', () => {
  const root = resolve(__dirname, '../../..');
  beforeAll(() => {
    execFileSync(process.execPath, [resolve(root, 'node_modules/nx/bin/nx.js'), 'show', 'projects'], { cwd: root, stdio: 'ignore' }); // builds the graph the rule reads
  });

  /** Runs the real eslint CLI on `code` as if it were `file` (nothing is written to disk). */
  const problems = async (file: string, code: string): Promise<string[]> => {
    let output: string;
    try {
      output = execFileSync(process.execPath, [resolve(root, 'node_modules/eslint/bin/eslint.js'), '--stdin', '--stdin-filename', file, '--format', 'json'], { cwd: root, input: code, encoding: 'utf8' });
    } catch (error) {
      output = (error as { stdout: string }).stdout; // exit code 1 when there are errors
    }
    const [result] = JSON.parse(output) as { messages: { ruleId: string; message: string }[] }[];
    return result.messages.map((m) => `${m.ruleId}: ${m.message}`);
  };

  it.each([
    ["import { Injectable } from '@nestjs/common';\nexport const x = Injectable;\n", '@nestjs/common'],
    ["import { Pool } from 'pg';\nexport const x = Pool;\n", 'pg'],
    ["import { Kafka } from 'kafkajs';\nexport const x = Kafka;\n", 'kafkajs'],
    ["import { DataSource } from 'typeorm';\nexport const x = DataSource;\n", 'typeorm'],
  ])('fails when a domain lib imports a framework (%#)', async (code, name) => {
    expect(await problems('libs/ledger-domain/src/boundary-probe.ts', code)).toEqual([
      expect.stringContaining(`@nx/enforce-module-boundaries: A project tagged with "type:domain" is not allowed to import "${name}"`),
    ]);
  });

  it('fails when a domain lib imports infrastructure or an app imports another app', async () => {
    expect(await problems('libs/pricing/src/boundary-probe.ts', "import { createKafkaClient } from '@tally/kafka';\nexport const x = createKafkaClient;\n"))
      .toEqual([expect.stringContaining('@nx/enforce-module-boundaries')]);
    expect(await problems('apps/ledger/src/boundary-probe.ts', "import { UsageIngestModule } from '../../usage-ingest/src/usage-ingest.module';\nexport const x = UsageIngestModule;\n"))
      .toEqual([expect.stringContaining('@nx/enforce-module-boundaries')]);
  });

  it.each([
    ['apps/ledger/src/record-usage/boundary-probe.ts', "import { ReadModelsModule } from '../read-models/read-models.module';\nexport const x = ReadModelsModule;\n"],
    ['apps/ledger/src/accounts/boundary-probe.ts', "import { BalanceReadRepository } from '../read-models/balance/balance.repository';\nexport const x = BalanceReadRepository;\n"],
    ['apps/ledger/src/ledger.errors.ts', "import { HISTORY_STATUS_BY_CODE } from './read-models/history/history.errors';\nexport const x = HISTORY_STATUS_BY_CODE;\n"],
  ])('fails when the ledger write side imports its read side (%s)', async (file, code) => {
    expect(await problems(file, code)).toEqual([expect.stringContaining('no-restricted-imports: ')]);
  });

  it('lets the ledger read side use the account kernel and the composition root use both sides', async () => {
    expect(await problems('apps/ledger/src/read-models/balance/boundary-probe.ts', "import { AccountRepository } from '../../accounts/account.repository';\nexport const x = AccountRepository;\n")).toEqual([]);
    expect(await problems('apps/ledger/src/ledger.module.ts', "import { ReadModelsModule } from './read-models/read-models.module';\nimport { RecordUsageModule } from './record-usage/record-usage.module';\nexport const x = [ReadModelsModule, RecordUsageModule];\n")).toEqual([]);
  });

  it('accepts what the boundaries allow', async () => {
    expect(await problems('libs/ledger-domain/src/boundary-probe.ts', "import { parseCredits } from '@tally/money';\nexport const x = parseCredits;\n")).toEqual([]);
    expect(await problems('apps/ledger/src/boundary-probe.ts', "import { parseCredits } from '@tally/money';\nimport { decide } from '@tally/ledger-domain';\nexport const x = [parseCredits, decide];\n")).toEqual([]);
  });
});
