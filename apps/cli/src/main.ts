import 'reflect-metadata';
import { ConfigError } from '@tally/shared';
import { buildCli } from './cli.command';
import { CliContext } from './cli-context.provider';

// kafkajs arms some timers with a negative delay (Node clamps them to 1 ms and warns): harmless, but not for an
// operator's terminal. Every other warning is printed as Node would.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

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
