#!/usr/bin/env node
import { version } from './args.js';

const USAGE = `Usage: pidwatch <command> [options]

Commands:
  run     run a command once per input line (or ::: argument), N at a time
  wait    wait for processes to exit, without polling
  worker  run the jobs of a BullMQ queue (pidwatch run --queue) as process trees

Options:
  -h, --help     show this help (also: pidwatch <command> --help)
  -V, --version  show the version

Run 'pidwatch <command> --help' for the options of a command.
`;

/** Each subcommand module exports one function that takes its argv and gives the exit status. */
type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.js')).runRun,
  wait: async () => (await import('./wait.js')).runWait,
  worker: async () => (await import('./worker.js')).runWorker,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '-h' || name === '--help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (name === '-V' || name === '--version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (load === undefined) {
    process.stderr.write(`pidwatch: unknown command '${name}' (try 'pidwatch --help')\n`);
    return 2;
  }
  return (await load())(rest);
}

// Exit only once what was written to stdout has been flushed to the pipe.
main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
    process.stdout.write('', () => process.exit(status));
  },
  (error: unknown) => {
    process.stderr.write(`pidwatch: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
