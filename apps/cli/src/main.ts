import 'reflect-metadata';
import { ConfigError } from '@tally/shared';
import { buildCli } from './cli.command';
import { CliContext } from './cli-context.provider';

async function main(): Promise<void> {
  const context = new CliContext();
  try {
    await buildCli(context).parseAsync(process.argv);
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : error instanceof Error ? error.message : String(error);
    process.stderr.write(`tally: ${message}\n`);
    process.exitCode = 1;
  } finally {
    await context.close().catch(() => undefined);
  }
}

void main();
