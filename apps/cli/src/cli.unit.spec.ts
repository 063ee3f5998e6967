import type { Command } from 'commander';
import { buildCli } from './cli.command';
import { CliContext } from './cli-context.provider';

/** Every command and subcommand, with its path from the root. */
function commands(command: Command, path: string[] = []): { path: string[]; command: Command }[] {
  return [{ path, command }, ...command.commands.flatMap((sub) => commands(sub, [...path, sub.name()]))];
}

/** Runs `tally <path> --help` in process, as the shell would, and returns what it printed. */
async function help(path: string[]): Promise<string> {
  // No configuration at all: --help must never need PostgreSQL, Kafka or valid settings.
  const program = buildCli(new CliContext({}));
  let out = '';
  const capture = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ writeOut: (text) => (out += text), writeErr: (text) => (out += text) });
    cmd.commands.forEach(capture);
  };
  capture(program);
  await expect(program.parseAsync(['node', 'tally', ...path, '--help'])).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
  return out;
}

describe('tally --help', () => {
  const all = commands(buildCli(new CliContext({})));

  it('has the commands of the runbook', () => {
    expect(all.map(({ path }) => path.join(' ')).filter(Boolean).sort()).toEqual([
      'account', 'account inspect',
      'config', 'config validate',
      'consumers', 'consumers lag', 'consumers set-offset',
      'dlq', 'dlq list', 'dlq replay', 'dlq show',
      'read-models', 'read-models rebuild', 'read-models verify',
    ]);
  });

  it.each(all.map(({ path, command }) => [path.join(' ') || '(root)', path, command] as const))('%s --help documents itself, its arguments and every option', async (_name, path, command) => {
    const text = await help(path);
    expect(text).toContain(`Usage: tally${path.length > 0 ? ` ${path.join(' ')}` : ''}`);
    expect(command.description().length).toBeGreaterThan(10);
    expect(text).toContain(command.description().split(' ').slice(0, 4).join(' '));
    for (const option of command.options) {
      expect(option.description.length).toBeGreaterThan(5);
      expect(text).toContain(option.flags);
    }
    for (const argument of command.registeredArguments) {
      expect(argument.description.length).toBeGreaterThan(3);
      expect(text).toContain(argument.name());
    }
    // A runnable command shows an example; a group lists its subcommands.
    if (command.commands.length === 0 && path.length > 0) expect(text).toMatch(/Examples?( \([^)]*\))?:\n {2}npm run tally -- /);
    for (const sub of command.commands) expect(text).toContain(sub.name());
  });
});
