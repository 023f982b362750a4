// `backup` and `restore`: the copy engine between a registry and a backup store, in either direction.
import type { Command } from 'commander';
import { buildReport, newRunId } from '../worker/engine/report.ts';
import { copyImages } from '../worker/engine/run.ts';
import { planImages } from '../worker/engine/plan.ts';
import { runKeys, type ImageResult, type RunReport } from '../schema/contract.ts';
import { openBackupStore, openRegistry, readPasswordFromStdin } from './endpoints.ts';
import { addFilterOptions, addRegistryOptions, addRunOptions, type CommonOptions } from './options.ts';
import { createProgress } from './progress.ts';
import { formatBytes, table } from './format.ts';

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

export function registerCopyCommands(program: Command): void {
  addRunOptions(addFilterOptions(addRegistryOptions(program.command('backup').description('copy images from a registry into a backup store'))))
    .requiredOption('--to <store>', 'backup store: s3://bucket/prefix, a directory, or file:///dir')
    .option('--include-untagged', 'also back up untagged images, by digest (ECR sources)')
    .action((options) => runCopy('backup', options));

  addRunOptions(addFilterOptions(addRegistryOptions(program.command('restore').description('copy images from a backup store into a registry'))))
    .requiredOption('--from <store>', 'backup store: s3://bucket/prefix, a directory, or file:///dir')
    .option('--as-of <iso8601>', 'restore each tag as it was at this time (point in time)')
    .option('--repository-prefix <prefix>', 'prepend this to every restored repository name (e.g. restored/)')
    .action((options) => runCopy('restore', options));

}
