import { Command } from 'commander';
import { accountCommand } from './accounts/account.command';
import { CliContext } from './cli-context.provider';
import { configFilesCommand } from './config-files/config-files.command';
import { consumersCommand } from './consumers/consumers.command';
import { deadLettersCommand } from './dead-letters/dead-letters.command';
import { readModelsCommand } from './read-models/read-models.command';

/**
 * `tally`: the operator CLI (commander). Configuration comes from the same environment variables as the services
 * (DATABASE_URL, DATABASE_SCHEMA, KAFKA_BROKERS, ...; see CliConfig), validated when a command first needs it.
 */
export function buildCli(context: CliContext): Command {
  const program = new Command('tally')
    .description('Operate Tally: rebuild and verify the ledger\'s read models, inspect accounts, replay dead letters, watch consumer lag, validate plans and rate cards')
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nConfiguration: the services\' environment variables (DATABASE_URL, DATABASE_SCHEMA=ledger, KAFKA_BROKERS, KAFKA_SSL and KAFKA_SASL_*, EVENT_STORE, OFFSETS_SCHEMAS, CLI_SCHEMA).\n' +
        'Run: npm run tally -- <command> [options]; every command has --help.',
    );
  program.addCommand(readModelsCommand(context));
  program.addCommand(accountCommand(context));
  program.addCommand(deadLettersCommand(context));
  program.addCommand(consumersCommand(context));
  program.addCommand(configFilesCommand());
  return program;
}
