#!/usr/bin/env node
// The ecr-backup command line: the copy engine run locally against any registry and store, and the
// deployed workflow started and watched from here. Each command group lives in its own module.
// Exit codes: 0 everything done, 1 some images failed (the rest were still done), 2 usage error,
// 3 every image done but the run report could not be stored.
import { Command, CommanderError } from 'commander';
import { UnknownRepositoryError } from '../core/engine/plan.ts';
import { UsageError } from './endpoints.ts';
import { errorText } from '../core/redact.ts';
import { registerCopyCommands } from './copy-commands.ts';
import { registerStoreCommands } from './store-commands.ts';
import { registerMaintenanceCommands } from './maintenance-commands.ts';
import { registerWorkflowCommands } from './workflow.ts';
import { registerDrillCommand } from './drill-command.ts';
import { registerDoctorCommand } from './doctor-command.ts';
// Inlined by the bundle (scripts/build.ts), so `--version` needs no package.json next to it.
import packageJson from '../package.json' with { type: 'json' };

function buildProgram(): Command {
  const program = new Command('ecr-backup')
    .description('Back up container images from ECR or any OCI registry to S3 or a directory, and restore them digest for digest.')
    .version(packageJson.version)
    .showHelpAfterError()
    .exitOverride();
  registerCopyCommands(program);
  registerStoreCommands(program);
  registerMaintenanceCommands(program);
  registerWorkflowCommands(program);
  registerDrillCommand(program);
  registerDoctorCommand(program);
  return program;
}

/**
 * The AWS SDK prints a 7-line warning on every run under node < 22 (its releases after early January
 * 2027 need node 22). Node 20 still works today, so say it once, in one line, and only to a person.
 */
function quietNodeVersionWarning(): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22 || process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED !== undefined) return;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  if (process.stderr.isTTY)
    process.stderr.write(`ecr-backup: note: node ${process.versions.node} works, but AWS SDK releases after January 2027 need node 22\n`);
}

/** Configuration errors the AWS SDK raises without a hint of the fix: reworded, and exit 2. */
const SDK_CONFIGURATION_HINTS: Record<string, string> = {
  'Region is missing':
    'no AWS region configured: set AWS_REGION (or a region in your AWS profile); a --registry URL with a directory store needs none',
};

/** The message of the innermost `cause`: endpoints wrap SDK errors with their context. */
function rootCauseMessage(error: unknown): string {
  let current = error;
  while (current instanceof Error && current.cause !== undefined) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

async function main(argv: string[]): Promise<number> {
  quietNodeVersionWarning();
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; every other commander error is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    const hint = SDK_CONFIGURATION_HINTS[rootCauseMessage(error)];
    process.stderr.write(`ecr-backup: ${hint ?? errorText(error)}\n`);
    return error instanceof UsageError || error instanceof UnknownRepositoryError || hint !== undefined ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
