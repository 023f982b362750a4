// Option groups shared by the commands, so each flag is spelled and described once.
import { type Command, Option } from 'commander';
import { UsageError, type RegistryOptions } from './endpoints.ts';

export interface FilterOptions {
  repositories?: string[];
  tags?: string[];
  excludeTags?: string[];
}

export interface CommonOptions extends RegistryOptions, FilterOptions {
  json?: boolean;
  dryRun?: boolean;
  concurrency: number;
}

export const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new UsageError(`--concurrency must be an integer from 1 to 256, got ${JSON.stringify(value)}`);
  return n;
};

export function addRegistryOptions(command: Command): Command {
  return command
    .option('--registry <url>', "an OCI registry (https://host[:port]); default: the ECR registry of the caller's AWS account and region")
    .option('--insecure', 'allow plain http:// to a non-loopback registry')
    .option('--username <name>', 'registry user name (with --password-stdin)')
    .option('--password-stdin', 'read the registry password from standard input');
}

export function addFilterOptions(command: Command): Command {
  return command
    .option('--repositories <glob...>', 'repositories to include (globs: * within a path segment, ** across)')
    .option('--tags <glob...>', 'tags to include')
    .option('--exclude-tags <glob...>', 'tags to leave out');
}

export function addRunOptions(command: Command): Command {
  return command
    .addOption(new Option('--concurrency <n>', 'images copied at once (blob transfers: twice this)').default(4).argParser(positiveInt))
    .option('--dry-run', 'list what would be copied, copy nothing')
    .option('--json', 'print a JSON summary on stdout');
}
