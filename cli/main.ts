#!/usr/bin/env node
// The ecr-backup command line: the copy engine run locally against any registry and store, and the
// deployed workflow started and watched from here. Each command group lives in its own module.
// Exit codes: 0 everything done, 1 some images failed (the rest were still done), 2 usage error.
import { Command, CommanderError } from 'commander';
import { UnknownRepositoryError } from '../worker/engine/plan.ts';
import { UsageError } from './endpoints.ts';
import { errorText } from '../worker/redact.ts';
import { registerCopyCommands } from './copy-commands.ts';
import { registerStoreCommands } from './store-commands.ts';
import { registerMaintenanceCommands } from './maintenance-commands.ts';
import { registerWorkflowCommands } from './workflow.ts';
import { registerDrillCommand } from './drill-command.ts';
import { registerDoctorCommand } from './doctor.ts';

function buildProgram(): Command {
  const program = new Command('ecr-backup')
    .description('Back up container images from ECR or any OCI registry to S3 or a directory, and restore them digest for digest.')
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

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; every other commander error is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`ecr-backup: ${errorText(error)}\n`);
    return error instanceof UsageError || error instanceof UnknownRepositoryError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
