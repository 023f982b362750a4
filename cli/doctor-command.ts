// Registers `ecr-backup doctor`. The checks and their SDK clients (CloudFormation, IAM, EC2,
// Scheduler: several MB of code) load only when doctor runs, so every other command starts fast.
import { type Command, Option } from 'commander';
import { CANARY_REPOSITORY } from './doctor-canary.ts';
import type { DoctorOptions } from './doctor.ts';
import { UsageError } from './endpoints.ts';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'check a deployed stack: outputs, simulated IAM permissions, store 404s, topic policy, VPC endpoints, schedule; --canary also runs a tiny backup and restore',
    )
    .option('--stack <name>', 'the CloudFormation stack that deployed ecr-backup')
    .option('--repository <name>', 'a repository the stack backs up, for the simulated ECR permissions', CANARY_REPOSITORY)
    .option(
      '--canary',
      'also back up and restore a scratch repository through the real workflow and compare digests (writes the store and one restored repository)',
    )
    .option(
      '--canary-repository <name>',
      "the scratch repository (must exist with at least one tagged image, within the stack's repositories)",
      CANARY_REPOSITORY,
    )
    .addOption(new Option('--poll-interval <seconds>', 'canary: how often executions are polled').default(5).argParser(pollSeconds))
    .option('--json', 'print the checks as JSON on stdout')
    .action(async (options: DoctorOptions) => {
      if (!options.stack) throw new UsageError('doctor: give --stack NAME (the CloudFormation stack that deployed ecr-backup)');
      const { defaultClients, formatChecklist, runDoctor } = await import('./doctor.ts');
      const result = await runDoctor(options, defaultClients());
      process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatChecklist(result));
      process.exitCode = result.ok ? 0 : 1;
    });
}

function pollSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600)
    throw new UsageError(`--poll-interval must be a number of seconds from 0 to 3600, got ${JSON.stringify(value)}`);
  return n;
}
