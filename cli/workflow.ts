// `ecr-backup run` and `ecr-backup runs`: start and watch executions of the deployed workflow (the
// Step Functions state machine of infra/ecr-backup.ts) instead of copying locally. This file: the
// commands' options and `run`; `runs` is workflow-runs.ts, the rest the other workflow-*.ts.
import { type Command, Option } from 'commander';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { InvalidInputError, parseExecutionInput, type ExecutionInput, type RunCounts } from '../schema/contract.ts';
import { addFilterOptions } from './options.ts';
import { UsageError } from './endpoints.ts';
import { formatBytes, formatDuration } from './format.ts';
import { countsFromOutput, findListing, openStore, readReport, storeUrlOf } from './workflow-history.ts';
import { waitForExecution } from './workflow-progress.ts';
import { listRuns, type RunsOptions } from './workflow-runs.ts';
import { addTargetOptions, resolveStateMachine, sfnCall, type TargetOptions } from './workflow-target.ts';

const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;

interface RunOptions extends TargetOptions {
  mode: string;
  repositories?: string[];
  tags?: string[];
  excludeTags?: string[];
  includeUntagged?: boolean;
  asOf?: string;
  targetRegion?: string;
  targetAccount?: string;
  repositoryPrefix?: string;
  applyPolicies?: boolean;
  dryRun?: boolean;
  name?: string;
  wait?: boolean;
  pollInterval: number;
}

const pollSeconds = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600)
    throw new UsageError(`--poll-interval must be a number of seconds from 0 to 3600, got ${JSON.stringify(value)}`);
  return n;
};

const maxExecutions = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new UsageError(`--max must be an integer from 1 to 1000, got ${JSON.stringify(value)}`);
  return n;
};

export function registerWorkflowCommands(program: Command): void {
  const run = addTargetOptions(
    program
      .command('run')
      .description('start a backup or restore on the deployed workflow (Step Functions); with --wait, follow it to the end')
      .requiredOption('--mode <mode>', 'backup or restore'),
  );
  addFilterOptions(run)
    .option('--include-untagged', 'also copy untagged images, by digest')
    .option('--as-of <iso8601>', 'restore: each tag as it was at this time')
    .option('--target-region <region>', "restore: into this region's registry")
    .option('--target-account <id>', "restore: into this account's registry")
    .option('--repository-prefix <prefix>', 'restore: prepend this to every restored repository name')
    .option('--apply-policies', 'restore: also set the recorded lifecycle and repository policies on repositories it creates')
    .option('--dry-run', 'list what would be copied, copy nothing')
    .option('--name <name>', 'execution name, also the run id (default: manual-<mode>-<UTC time>-<random>)')
    .option('--wait', 'wait for the execution to finish, showing progress; exit 1 unless it succeeds')
    .addOption(new Option('--poll-interval <seconds>', 'how often --wait polls').default(5).argParser(pollSeconds))
    .action((options: RunOptions) => runWorkflow(options));

  addTargetOptions(program.command('runs').description('list recent executions of the deployed workflow, with their counts'))
    .addOption(new Option('--max <n>', 'how many executions, newest first').default(10).argParser(maxExecutions))
    .action((options: RunsOptions) => listRuns(options));
}

// ---- run ----------------------------------------------------------------------------------------

/** The execution input from the command line, validated by the contract (exit 2 naming the field). */
function executionInputFromOptions(options: RunOptions): ExecutionInput {
  const target = {
    ...(options.targetRegion !== undefined ? { region: options.targetRegion } : {}),
    ...(options.targetAccount !== undefined ? { accountId: options.targetAccount } : {}),
    ...(options.repositoryPrefix !== undefined ? { repositoryPrefix: options.repositoryPrefix } : {}),
  };
  const raw = {
    mode: options.mode,
    ...(options.repositories ? { repositories: options.repositories } : {}),
    ...(options.tags ? { tags: options.tags } : {}),
    ...(options.excludeTags ? { excludeTags: options.excludeTags } : {}),
    ...(options.includeUntagged ? { includeUntagged: true } : {}),
    ...(options.asOf !== undefined ? { asOf: options.asOf } : {}),
    ...(Object.keys(target).length ? { target } : {}),
    ...(options.applyPolicies ? { applyPolicies: true } : {}),
    ...(options.dryRun ? { dryRun: true } : {}),
  };
  try {
    return parseExecutionInput(raw);
  } catch (error) {
    if (error instanceof InvalidInputError) throw new UsageError(error.message);
    throw error;
  }
}

export function defaultExecutionName(mode: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `manual-${mode}-${stamp}-${Math.random().toString(16).slice(2, 6).padEnd(4, '0')}`;
}

async function runWorkflow(options: RunOptions) {
  const input = executionInputFromOptions(options);
  const name = options.name ?? defaultExecutionName(input.mode);
  if (!EXECUTION_NAME.test(name)) throw new UsageError(`--name must be 1-80 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(name)}`);
  const explicitStore = options.store === undefined ? undefined : openStore(options.store);
  const target = await resolveStateMachine(options);
  const sfn = target.client;

  const started = await sfnCall(() =>
    sfn.send(new StartExecutionCommand({ stateMachineArn: target.arn, name, input: JSON.stringify(input) })),
  );
  const executionArn = started.executionArn!;
  if (!options.json) process.stdout.write(`${executionArn}\n`);
  if (!options.wait) {
    if (options.json)
      process.stdout.write(
        `${JSON.stringify({ executionArn, name, stateMachineArn: target.arn, startDate: started.startDate, input }, null, 2)}\n`,
      );
    return;
  }

  const watched = await waitForExecution(sfn, executionArn, { intervalMs: options.pollInterval * 1000, quiet: Boolean(options.json) });
  const execution = watched.execution;
  const storeUrl = explicitStore ? undefined : storeUrlOf(watched.listing ?? (await findListing(sfn, executionArn)));
  const store = explicitStore ?? (storeUrl ? openStore(storeUrl, target.region) : undefined);
  const report = store ? await readReport(store, name) : undefined;
  const status = execution.status!;
  if (status !== 'SUCCEEDED') process.exitCode = 1;

  if (options.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          executionArn,
          name,
          stateMachineArn: target.arn,
          input,
          status,
          startDate: execution.startDate,
          stopDate: execution.stopDate,
          ...(execution.error !== undefined ? { error: execution.error } : {}),
          ...(execution.cause !== undefined ? { cause: execution.cause } : {}),
          store: store?.description ?? null,
          counts: report?.counts ?? countsFromOutput(execution) ?? null,
          report: report ?? null,
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  const took =
    execution.startDate && execution.stopDate
      ? ` after ${formatDuration(execution.stopDate.getTime() - execution.startDate.getTime())}`
      : '';
  process.stdout.write(`${status}${took}: ${name}\n`);
  if (status !== 'SUCCEEDED') {
    if (execution.error) process.stdout.write(`error: ${execution.error}\n`);
    if (execution.cause) process.stdout.write(`cause: ${execution.cause}\n`);
  }
  if (report) {
    process.stdout.write(`${report.mode} ${report.runId}: ${countsLine(report.counts)}\n`);
    for (const failure of report.failures.slice(0, 20))
      process.stdout.write(`  failed: ${failure.error ?? `${failure.repository}:${failure.tag ?? failure.digest}`}\n`);
    if (report.failures.length > 20) process.stdout.write(`  ... and ${report.failures.length - 20} more failure(s) in the report\n`);
    process.stdout.write(`report: ${store!.runs.whereReport(name)}\n`);
  } else {
    const counts = countsFromOutput(execution);
    if (counts) process.stdout.write(`${input.mode} ${name}: ${countsLine(counts)}\n`);
    if (store) process.stdout.write(`no report at ${store.runs.whereReport(name)}\n`);
    else if (!counts) process.stdout.write('no run report: the store is unknown (pass --store s3://bucket/prefix)\n');
  }
}

function countsLine(c: RunCounts): string {
  return (
    `${c.images} image(s): ${c.copied} copied, ${c.unchanged} unchanged, ${c.failed} failed` +
    `${c.planned ? `, ${c.planned} planned (dry run)` : ''}; ${formatBytes(c.bytesCopied)} copied, ${formatBytes(c.bytesDeduplicated)} already present`
  );
}
