// `ecr-backup run` and `ecr-backup runs`: start and watch executions of the deployed workflow (the
// Step Functions state machine of infra/ecr-backup.ts) instead of copying locally.
//
// Which state machine: `--state-machine-arn`, or `--stack NAME`, resolved with Step Functions alone
// (@aws-sdk/client-cloudformation is not a dependency): the state machine carrying the tag the
// EcrBackup construct puts on it, `ecr-backup:stack-name = NAME` (CloudFormation's own automatic
// tags are not promised for every resource type); when several match, the one whose definition has
// this workflow's states.
// Which store (for run reports): `--store`, or derived from the execution itself: the output of its
// listing state names the bucket and the batches key, which carries the store prefix.
import { type Command, Option } from 'commander';
import { STACK_NAME_TAG } from '../schema/contract.ts';
import { STATE } from '../schema/workflow-states.ts';
import { addFilterOptions } from './options.ts';
import {
  DescribeExecutionCommand,
  DescribeMapRunCommand,
  DescribeStateMachineCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  ListMapRunsCommand,
  ListStateMachinesCommand,
  ListTagsForResourceCommand,
  SFNClient,
  StartExecutionCommand,
  type DescribeExecutionCommandOutput,
  type GetExecutionHistoryCommandOutput,
  type ExecutionListItem,
  type ExecutionStatus,
  type MapRunItemCounts,
} from '@aws-sdk/client-sfn';
import {
  InvalidInputError,
  ListingOutput,
  RunCounts,
  RunReport,
  parseExecutionInput,
  runKeys,
  type ExecutionInput,
} from '../schema/contract.ts';
import { mapLimited } from '../core/limiter.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { NotFoundError } from '../core/store/object-store.ts';
import { openBackupStore as openStoreAt, StoreUrlError } from '../core/store/url.ts';
import { UsageError } from './endpoints.ts';
import { formatBytes, table } from './format.ts';

/**
 * State names of state-machine/definition.ts (STATE.list, STATE.map), repeated here so the CLI does
 * not load aws-cdk-lib; test/cli-workflow.test.ts checks that they agree.
 */

const TERMINAL: ReadonlySet<ExecutionStatus> = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);
const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:([a-z0-9-]+):(\d{12}):stateMachine:[^:\s]+(:[^:\s]+)?$/;
const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;

interface TargetOptions {
  stack?: string;
  stateMachineArn?: string;
  store?: string;
  json?: boolean;
}

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

interface RunsOptions extends TargetOptions {
  max: number;
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

function addTargetOptions(command: Command): Command {
  return command
    .addOption(new Option('--stack <name>', 'the CloudFormation stack that deployed ecr-backup').conflicts('stateMachineArn'))
    .option('--state-machine-arn <arn>', 'the ecr-backup state machine (instead of --stack)')
    .option('--store <url>', 's3://bucket/prefix of the backup store, for run reports (default: taken from the execution)')
    .option('--json', 'print JSON on stdout');
}

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
          store: store?.objects.description ?? null,
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
    process.stdout.write(`report: ${store!.objects.description}/${runKeys.report(name)}\n`);
  } else {
    const counts = countsFromOutput(execution);
    if (counts) process.stdout.write(`${input.mode} ${name}: ${countsLine(counts)}\n`);
    if (store) process.stdout.write(`no report at ${store.objects.description}/${runKeys.report(name)}\n`);
    else if (!counts) process.stdout.write('no run report: the store is unknown (pass --store s3://bucket/prefix)\n');
  }
}

interface Watched {
  execution: DescribeExecutionCommandOutput;
  /** The listing state's output, when it was looked up while waiting. */
  listing?: ListingOutput;
}

/** Polls until the execution ends; meanwhile the distributed Map's item counts on a status line. */
async function waitForExecution(sfn: SFNClient, executionArn: string, options: { intervalMs: number; quiet: boolean }): Promise<Watched> {
  const status = statusLine(process.stderr, options.quiet);
  let mapRunArn: string | undefined;
  let mapRunsUnavailable = false;
  let listing: ListingOutput | undefined;
  let listingLookedUp = false;
  const onSigint = () => {
    status.clear();
    process.stderr.write(`stopped waiting; the execution continues: ${executionArn}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    for (;;) {
      const execution = await sfnCall(() => sfn.send(new DescribeExecutionCommand({ executionArn })));
      if (TERMINAL.has(execution.status!)) {
        status.clear();
        return { execution, ...(listing ? { listing } : {}) };
      }
      let counts: MapRunItemCounts | undefined;
      if (!mapRunsUnavailable) {
        try {
          if (!mapRunArn) {
            const runs = (await sfn.send(new ListMapRunsCommand({ executionArn }))).mapRuns ?? [];
            mapRunArn = runs.sort((a, b) => (b.startDate?.getTime() ?? 0) - (a.startDate?.getTime() ?? 0))[0]?.mapRunArn;
          }
          if (mapRunArn) counts = (await sfn.send(new DescribeMapRunCommand({ mapRunArn }))).itemCounts;
        } catch {
          // No permission for map runs, or an emulator without them: progress without item counts.
          mapRunsUnavailable = true;
        }
      }
      if (counts && !listingLookedUp) {
        listingLookedUp = true;
        listing = await findListing(sfn, executionArn);
      }
      const elapsed = execution.startDate ? formatDuration(Date.now() - execution.startDate.getTime()) : '';
      const detail = counts ? `  ${mapProgress(counts, listing)}` : '';
      status.update(`${execution.status}${detail}`, `${execution.status} ${elapsed}${detail}`);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function mapProgress(c: MapRunItemCounts, listing: ListingOutput | undefined): string {
  const failed = (c.failed ?? 0) + (c.timedOut ?? 0) + (c.aborted ?? 0);
  const done = (c.succeeded ?? 0) + failed;
  const total = listing?.batchCount ?? c.total ?? 0;
  const images = listing ? ` (${listing.itemCount} image(s))` : '';
  return `${STATE.map}: ${done}/${total} batch(es)${images} done, ${c.running ?? 0} running${failed ? `, ${failed} failed` : ''}`;
}

/**
 * A redrawn line on a TTY; otherwise a line whenever the status changes (and at least once a
 * minute), so logs of long runs stay short.
 */
function statusLine(stream: NodeJS.WriteStream, quiet: boolean) {
  let lastKey: string | undefined;
  let lastPrinted = 0;
  let drawn = false;
  return {
    update(key: string, text: string) {
      if (quiet) return;
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        drawn = true;
        return;
      }
      const now = Date.now();
      if (key !== lastKey || now - lastPrinted >= 60_000) {
        stream.write(`${text}\n`);
        lastKey = key;
        lastPrinted = now;
      }
    },
    clear() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

// ---- runs ---------------------------------------------------------------------------------------

async function listRuns(options: RunsOptions) {
  const explicitStore = options.store === undefined ? undefined : openStore(options.store);
  const target = await resolveStateMachine(options);
  const sfn = target.client;
  const executions: ExecutionListItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfnCall(() =>
      sfn.send(
        new ListExecutionsCommand({ stateMachineArn: target.arn, maxResults: Math.min(options.max - executions.length, 1000), nextToken }),
      ),
    );
    executions.push(...(page.executions ?? []));
    nextToken = page.nextToken;
  } while (nextToken && executions.length < options.max);
  executions.splice(options.max);

  // The store: --store, or from the listing output of one of the newest executions.
  let store = explicitStore;
  if (!store) {
    for (const e of executions.slice(0, 3)) {
      const url = storeUrlOf(await findListing(sfn, e.executionArn!));
      if (url) {
        store = openStore(url, target.region);
        break;
      }
    }
  }
  const rows = await mapLimited(executions, 4, async (e) => {
    const name = e.name!;
    let counts: RunCounts | undefined = store ? (await readReport(store, name))?.counts : undefined;
    if (!counts && e.status === 'SUCCEEDED') {
      counts = countsFromOutput(await sfnCall(() => sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn! }))));
    }
    return { name, executionArn: e.executionArn!, status: e.status!, startDate: e.startDate, stopDate: e.stopDate, counts };
  });

  if (options.json) {
    const executionsJson = rows.map((r) => ({ ...r, counts: r.counts ?? null }));
    process.stdout.write(
      JSON.stringify({ stateMachineArn: target.arn, store: store?.objects.description ?? null, executions: executionsJson }, null, 2) +
        '\n',
    );
    return;
  }
  if (rows.length === 0) {
    process.stdout.write(`no executions of ${target.arn}\n`);
    return;
  }
  const cell = (n: number | undefined) => (n === undefined ? '' : String(n));
  process.stdout.write(
    `${table(
      ['NAME', 'STATUS', 'STARTED', 'DURATION', 'IMAGES', 'COPIED', 'UNCHANGED', 'FAILED', 'COPIED BYTES'],
      rows.map((r) => [
        r.name,
        r.status,
        r.startDate ? formatTime(r.startDate) : '',
        r.startDate && r.stopDate ? formatDuration(r.stopDate.getTime() - r.startDate.getTime()) : '',
        cell(r.counts?.images),
        cell(r.counts?.copied),
        cell(r.counts?.unchanged),
        cell(r.counts?.failed),
        r.counts ? formatBytes(r.counts.bytesCopied) : '',
      ]),
    )}\n`,
  );
  if (!store) process.stderr.write('counts of failed runs need the store: pass --store s3://bucket/prefix\n');
}

// ---- shared -------------------------------------------------------------------------------------

interface ResolvedStateMachine {
  arn: string;
  client: SFNClient;
  region?: string;
}

/** --state-machine-arn as given, or the state machine of --stack (see the file comment). */
async function resolveStateMachine(options: TargetOptions): Promise<ResolvedStateMachine> {
  if (options.stateMachineArn !== undefined) {
    const m = STATE_MACHINE_ARN.exec(options.stateMachineArn);
    if (!m)
      throw new UsageError(
        `--state-machine-arn: not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>): ${JSON.stringify(options.stateMachineArn)}`,
      );
    return { arn: options.stateMachineArn, client: new SFNClient({ region: m[1]! }), region: m[1]! };
  }
  if (options.stack === undefined || options.stack === '') throw new UsageError('give --stack NAME or --state-machine-arn ARN');
  const client = new SFNClient({});
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfnCall(() => client.send(new ListStateMachinesCommand({ maxResults: 1000, nextToken })));
    arns.push(...(page.stateMachines ?? []).map((s) => s.stateMachineArn!));
    nextToken = page.nextToken;
  } while (nextToken);
  const tagged = (
    await mapLimited(arns, 4, async (arn) => {
      const tags = (await sfnCall(() => client.send(new ListTagsForResourceCommand({ resourceArn: arn })))).tags ?? [];
      return tags.some((t) => t.key === STACK_NAME_TAG && t.value === options.stack) ? arn : undefined;
    })
  ).filter((arn): arn is string => arn !== undefined);
  let matches = tagged;
  if (tagged.length > 1) {
    matches = (
      await mapLimited(tagged, 4, async (arn) => {
        const { definition } = await sfnCall(() => client.send(new DescribeStateMachineCommand({ stateMachineArn: arn })));
        return isWorkflowDefinition(definition) ? arn : undefined;
      })
    ).filter((arn): arn is string => arn !== undefined);
  }
  if (matches.length !== 1) {
    const found =
      matches.length === 0
        ? `none of the ${arns.length} state machine(s) in this region carries the tag ${STACK_NAME_TAG}=${options.stack}`
        : `several match: ${matches.join(', ')}`;
    throw new UsageError(`--stack ${options.stack}: ${found}; pass --state-machine-arn instead`);
  }
  const region = STATE_MACHINE_ARN.exec(matches[0]!)?.[1];
  return { arn: matches[0]!, client, ...(region ? { region } : {}) };
}

function isWorkflowDefinition(definition: string | undefined): boolean {
  try {
    const states = (JSON.parse(definition ?? '{}') as { States?: Record<string, unknown> }).States ?? {};
    return STATE.list in states && STATE.map in states;
  } catch {
    return false;
  }
}

/** The output of the execution's listing state (bucket, batches key, counts), when it has one. */
async function findListing(sfn: SFNClient, executionArn: string): Promise<ListingOutput | undefined> {
  let nextToken: string | undefined;
  // The listing is the first task: it is within the first page or two of the history.
  for (let page = 0; page < 3; page++) {
    let history: GetExecutionHistoryCommandOutput;
    try {
      history = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 100, nextToken }));
    } catch {
      return undefined;
    }
    for (const event of history.events ?? []) {
      const exited = event.stateExitedEventDetails;
      if (exited?.name !== STATE.list || !exited.output) continue;
      try {
        const parsed = ListingOutput.safeParse((JSON.parse(exited.output) as { listing?: unknown }).listing);
        if (parsed.success) return parsed.data;
      } catch {
        // not JSON: keep looking
      }
    }
    nextToken = history.nextToken;
    if (!nextToken) return undefined;
  }
  return undefined;
}

/** `s3://bucket/prefix/` of the store a listing wrote to (its batches key carries the prefix). */
function storeUrlOf(listing: ListingOutput | undefined): string | undefined {
  if (!listing) return undefined;
  const suffix = runKeys.batches(listing.runId);
  if (!listing.batchesKey.endsWith(suffix)) return undefined;
  return `s3://${listing.bucket}/${listing.batchesKey.slice(0, -suffix.length)}`;
}

function openStore(url: string, region?: string): BackupStore {
  try {
    return openStoreAt(url, region ? { store: { clientOptions: { region } } } : {});
  } catch (error) {
    if (error instanceof StoreUrlError) throw new UsageError(`--store: ${error.message}`);
    throw error;
  }
}

async function readReport(store: BackupStore, runId: string): Promise<RunReport | undefined> {
  try {
    const parsed = RunReport.safeParse(await store.readJson(runKeys.report(runId)));
    return parsed.success ? parsed.data : undefined;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** The summary Lambda's output (the execution's output on success) carries the counts. */
function countsFromOutput(execution: DescribeExecutionCommandOutput): RunCounts | undefined {
  if (!execution.output) return undefined;
  try {
    const parsed = RunCounts.safeParse((JSON.parse(execution.output) as { counts?: unknown }).counts);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function countsLine(c: RunCounts): string {
  return (
    `${c.images} image(s): ${c.copied} copied, ${c.unchanged} unchanged, ${c.failed} failed` +
    `${c.planned ? `, ${c.planned} planned (dry run)` : ''}; ${formatBytes(c.bytesCopied)} copied, ${formatBytes(c.bytesDeduplicated)} already present`
  );
}

/** Step Functions errors that mean "wrong argument" exit 2; the rest (credentials, network) exit 1. */
async function sfnCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (
      name &&
      [
        'StateMachineDoesNotExist',
        'InvalidArn',
        'ExecutionAlreadyExists',
        'InvalidName',
        'ExecutionDoesNotExist',
        'InvalidExecutionInput',
      ].includes(name)
    ) {
      throw new UsageError(`${name}: ${(error as Error).message}`);
    }
    throw error;
  }
}

function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}
