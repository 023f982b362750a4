#!/usr/bin/env node
// The ecr-backup command line: the copy engine run locally against any registry and store.
// Exit codes: 0 everything done, 1 some images failed (the rest were still done), 2 usage error.
import { Command, CommanderError, Option } from 'commander';
import { buildReport, newRunId } from '../worker/engine/report.ts';
import { copyImages } from '../worker/engine/run.ts';
import { planImages, UnknownRepositoryError } from '../worker/engine/plan.ts';
import { verifyStore } from '../worker/store/verify.ts';
import { runKeys, type ImageResult, type RunReport } from '../schema/contract.ts';
import { openBackupStore, openRegistry, readPasswordFromStdin, UsageError, type RegistryOptions } from './endpoints.ts';
import { createProgress } from './progress.ts';
import { formatBytes, table } from './format.ts';
import { registerWorkflowCommands } from './workflow.ts';

interface FilterOptions {
  repositories?: string[];
  tags?: string[];
  excludeTags?: string[];
}

interface CommonOptions extends RegistryOptions, FilterOptions {
  json?: boolean;
  dryRun?: boolean;
  concurrency: number;
}

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`--concurrency must be an integer from 1 to 256, got ${JSON.stringify(value)}`);
  return n;
};

function addRegistryOptions(command: Command): Command {
  return command
    .option('--registry <url>', 'an OCI registry (https://host[:port]); default: the ECR registry of the caller\'s AWS account and region')
    .option('--insecure', 'allow plain http:// to a non-loopback registry')
    .option('--username <name>', 'registry user name (with --password-stdin)')
    .option('--password-stdin', 'read the registry password from standard input');
}

function addFilterOptions(command: Command): Command {
  return command
    .option('--repositories <glob...>', 'repositories to include (globs: * within a path segment, ** across)')
    .option('--tags <glob...>', 'tags to include')
    .option('--exclude-tags <glob...>', 'tags to leave out');
}

function addRunOptions(command: Command): Command {
  return command
    .addOption(new Option('--concurrency <n>', 'images copied at once (blob transfers: twice this)').default(4).argParser(positiveInt))
    .option('--dry-run', 'list what would be copied, copy nothing')
    .option('--json', 'print a JSON summary on stdout');
}

async function runCopy(mode: RunReport['mode'], options: CommonOptions & { includeUntagged?: boolean; asOf?: string; repositoryPrefix?: string; to?: string; from?: string }) {
  const started = new Date();
  const store = openBackupStore((mode === 'backup' ? options.to : options.from)!, { asOf: options.asOf });
  if (options.passwordStdin) options.password = await readPasswordFromStdin();
  const registry = openRegistry(options);
  const [source, destination] = mode === 'backup' ? [registry, store] : [store, registry];
  const items = await planImages(source, {
    repositories: options.repositories,
    tags: options.tags,
    excludeTags: options.excludeTags,
    includeUntagged: options.includeUntagged,
  });
  const progress = createProgress(items.length, { quiet: Boolean(options.json) });
  const results = await copyImages({
    source,
    destination,
    items,
    repositoryPrefix: options.repositoryPrefix,
    imageConcurrency: options.concurrency,
    blobConcurrency: options.concurrency * 2,
    dryRun: options.dryRun,
    onProgress: (event) => progress.onEvent(event),
  });
  progress.finish();
  const report = buildReport(newRunId('cli'), mode, started, results);
  if (!options.dryRun && items.length > 0) await store.writeJson(runKeys.report(report.runId), report);
  printRunSummary(report, source.description, destination.description, options);
  if (report.counts.failed > 0) process.exitCode = 1;
}

function printRunSummary(report: RunReport, from: string, to: string, options: CommonOptions) {
  if (options.json) {
    process.stdout.write(JSON.stringify({ ...report, source: from, destination: to }, null, 2) + '\n');
    return;
  }
  const c = report.counts;
  if (options.dryRun) {
    const rows = report.results.map((r: ImageResult) => [r.repository, r.tag ?? '', r.digest ?? '', r.targetRepository ?? '']);
    if (rows.length) process.stdout.write(table(['REPOSITORY', 'TAG', 'DIGEST', 'TARGET'], rows) + '\n');
    process.stdout.write(`dry run: ${c.images} image(s) would be copied from ${from} to ${to}\n`);
    return;
  }
  process.stdout.write(
    `${report.mode} ${report.runId}: ${c.images} image(s) from ${from} to ${to}: ${c.copied} copied, ${c.unchanged} unchanged, ` +
      `${c.failed} failed; ${formatBytes(c.bytesCopied)} copied, ${formatBytes(c.bytesDeduplicated)} already present\n`,
  );
  for (const failure of report.failures) process.stdout.write(`  failed: ${failure.error}\n`);
}

export function buildProgram(): Command {
  const program = new Command('ecr-backup')
    .description('Back up container images from ECR or any OCI registry to S3 or a directory, and restore them digest for digest.')
    .showHelpAfterError()
    .exitOverride();

  addRunOptions(addFilterOptions(addRegistryOptions(program.command('backup').description('copy images from a registry into a backup store'))))
    .requiredOption('--to <store>', 'backup store: s3://bucket/prefix, a directory, or file:///dir')
    .option('--include-untagged', 'also back up untagged images, by digest (ECR sources)')
    .action((options) => runCopy('backup', options));

  addRunOptions(addFilterOptions(addRegistryOptions(program.command('restore').description('copy images from a backup store into a registry'))))
    .requiredOption('--from <store>', 'backup store: s3://bucket/prefix, a directory, or file:///dir')
    .option('--as-of <iso8601>', 'restore each tag as it was at this time (point in time)')
    .option('--repository-prefix <prefix>', 'prepend this to every restored repository name (e.g. restored/)')
    .action((options) => runCopy('restore', options));

  addFilterOptions(program.command('list').description('list repositories, tags, digests, sizes and backup times in a store'))
    .requiredOption('--from <store>', 'backup store')
    .option('--json', 'print JSON')
    .action(async (options: FilterOptions & { from: string; json?: boolean }) => {
      const store = openBackupStore(options.from);
      const items = await planImages(store, { repositories: options.repositories, tags: options.tags, excludeTags: options.excludeTags, includeUntagged: true });
      const entries = await store.describe(items);
      if (options.json) {
        process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
        return;
      }
      const rows = entries.map((e) => [e.repository, e.tag ?? '<untagged>', e.digest, formatBytes(e.imageBytes), e.backedUpAt, e.platforms?.join(',') ?? '']);
      process.stdout.write(table(['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'BACKED UP', 'PLATFORMS'], rows) + '\n');
    });

  program
    .command('verify')
    .description('check that every blob the catalog references exists and hashes to its digest')
    .requiredOption('--from <store>', 'backup store')
    .option('--json', 'print JSON')
    .action(async (options: { from: string; json?: boolean }) => {
      const report = await verifyStore(openBackupStore(options.from));
      if (options.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else {
        process.stdout.write(`checked ${report.checkedBlobs} blob(s), ${formatBytes(report.checkedBytes)}: ${report.problems.length} problem(s)\n`);
        for (const p of report.problems) process.stdout.write(`  ${p.problem}: ${p.repository}:${p.tag ?? p.digest} blob ${p.blob}${p.detail ? ` (${p.detail})` : ''}\n`);
      }
      if (report.problems.length > 0) process.exitCode = 1;
    });

  registerWorkflowCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; every other commander error is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`ecr-backup: ${message}\n`);
    return error instanceof UsageError || error instanceof UnknownRepositoryError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
