// `drill`: a restore drill against a registry (core/drill/drill.ts): restore a sample into a scratch
// prefix, compare digests, measure, clean up, write runs/<drill>/drill.json. Exit 1 when it failed.
import { Option, type Command } from 'commander';
import { RestoreTarget } from '../schema/contract.ts';
import { runDrill } from '../core/drill/drill.ts';
import { drillReportKey, type DrillReport } from '../schema/drill.ts';
import { openBackupStore, openRegistry, readPasswordFromStdin, UsageError } from './endpoints.ts';
import { addRegistryOptions, positiveInt, type CommonOptions } from './options.ts';
import { formatBytes, formatDuration } from './format.ts';

const sampleSize = (value: string): number | 'all' => {
  if (value === 'all') return 'all';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--sample must be a positive integer or "all", got ${JSON.stringify(value)}`);
  return n;
};

function drillLines(report: DrillReport): string[] {
  const rto = report.rto.estimatedSeconds;
  return [
    `drill ${report.drillId}: ${report.ok ? 'PASSED' : 'FAILED'}: ${report.passed} of ${report.sampled} sampled image(s) (of ${report.storeImages}) restored with their recorded digests into ${report.registry}/${report.scratchPrefix}`,
    `  restore: ${formatBytes(report.sampleBytes)} in ${formatDuration(report.restoreMs)} = ${formatBytes(report.throughputBytesPerSecond)}/s`,
    `  RTO estimate for the whole store (${formatBytes(report.rto.storeBytes)} of current images): ${rto === null ? 'unknown (nothing restored)' : `${rto} s`}`,
    `  cleanup: ${report.cleanup.deleted} scratch image(s) deleted${report.cleanup.problems.length ? `, ${report.cleanup.problems.length} problem(s)` : ''}`,
    ...report.images.filter((i) => i.status === 'failed').map((i) => `  failed: ${i.error}`),
    ...report.cleanup.problems.map((p) => `  cleanup problem: ${p}`),
    ...(report.sampled === 0 ? ['  the store holds no oci images to drill'] : []),
    `  report: ${drillReportKey(report.drillId)}`,
  ];
}

export function registerDrillCommand(program: Command): void {
  addRegistryOptions(
    program
      .command('drill')
      .description('restore drill: restore a sample into a scratch prefix, compare digests, measure the RTO, delete the scratch images'),
  )
    .requiredOption('--from <store>', 'backup store')
    .addOption(
      new Option('--sample <n>', 'images to restore (a random sample of the current tags), or "all"').default(10).argParser(sampleSize),
    )
    .option('--prefix <prefix>', 'scratch repository prefix (default: ecr-backup-drill/<drill id>/)')
    .addOption(new Option('--concurrency <n>', 'images restored at once').default(4).argParser(positiveInt))
    .option('--json', 'print the drill report as JSON')
    .action(async (options: CommonOptions & { from: string; sample: number | 'all'; prefix?: string }) => {
      if (options.prefix !== undefined) {
        const prefix = options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`;
        if (!RestoreTarget.shape.repositoryPrefix.safeParse(prefix).success)
          throw new UsageError(
            `--prefix ${JSON.stringify(options.prefix)} is not a valid repository prefix (lowercase path components, e.g. drill/)`,
          );
        options.prefix = prefix;
      }
      const store = openBackupStore(options.from);
      if (options.passwordStdin) options.password = await readPasswordFromStdin();
      const registry = openRegistry(options);
      const report = await runDrill({ store, registry, sample: options.sample, prefix: options.prefix, concurrency: options.concurrency });
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${drillLines(report).join('\n')}\n`);
      if (!report.ok) process.exitCode = 1;
    });
}
