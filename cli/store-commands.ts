// `list` and `verify`: reading a backup store.
import type { Command } from 'commander';
import { planImages, rejectedRecordNotes, type PlanSkip } from '../core/engine/plan.ts';
import { verifyStore } from '../core/store/verify.ts';
import { isArchiveRecord } from '../core/store/layout.ts';
import { addFilterOptions, addRegistryOptions, type FilterOptions } from './options.ts';
import { noteDamage, runRepair } from './repair-command.ts';
import { openBackupStore, UsageError, type RegistryOptions } from './endpoints.ts';
import { formatBytes, table } from './format.ts';

export function registerStoreCommands(program: Command): void {
  addFilterOptions(program.command('list').description('list repositories, tags, digests, sizes and backup times in a store'))
    .requiredOption('--from <store>', 'backup store')
    .option('--json', 'print JSON')
    .action(async (options: FilterOptions & { from: string; json?: boolean }) => {
      const store = openBackupStore(options.from, { existing: true });
      const items = await planImages(
        store,
        { repositories: options.repositories, tags: options.tags, excludeTags: options.excludeTags, includeUntagged: true },
        8,
        warnSkipped,
      );
      const entries = await store.describe(items);
      for (const note of rejectedRecordNotes(store.rejectedRecords())) warnSkipped(note);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
        return;
      }
      const rows = entries.map((e) => [
        e.repository,
        e.tag ?? '<untagged>',
        isArchiveRecord(e) ? 'docker-archive*' : 'oci',
        e.digest,
        formatBytes(e.imageBytes),
        e.backedUpAt,
        e.archive?.platform ?? e.platforms?.join(',') ?? '',
      ]);
      process.stdout.write(`${table(['REPOSITORY', 'TAG', 'FORMAT', 'DIGEST', 'SIZE', 'BACKED UP', 'PLATFORMS'], rows)}\n`);
      if (entries.some(isArchiveRecord)) {
        process.stdout.write(
          '* docker-archive entries keep the image ID (config digest), not the manifest digest: DIGEST is the source manifest, ' +
            'and a restore pushes a new one. oci entries restore digest for digest.\n',
        );
      }
    });

  addRegistryOptions(
    program
      .command('verify')
      .description('check that every blob the catalog references exists and hashes to its digest')
      .requiredOption('--from <store>', 'backup store')
      .option('--json', 'print JSON')
      .option('--repair', 'copy missing or corrupt blobs and manifests again from the source registry (--registry), then verify again'),
  ).action(async (options: RegistryOptions & { from: string; json?: boolean; repair?: boolean }) => {
    if (options.repair) return runRepair(openBackupStore(options.from, { existing: true }), options);
    if (options.registry || options.username) throw new UsageError('--registry and --username apply to verify --repair only');
    const store = openBackupStore(options.from, { existing: true });
    const report = await verifyStore(store);
    await noteDamage(store, report.problems);
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      process.stdout.write(
        `checked ${report.checkedBlobs} blob(s), ${formatBytes(report.checkedBytes)}: ${report.problems.length} problem(s)\n`,
      );
      for (const p of report.problems)
        process.stdout.write(`  ${p.problem}: ${p.repository}:${p.tag ?? p.digest} blob ${p.blob}${p.detail ? ` (${p.detail})` : ''}\n`);
      if (report.externalLayers.length > 0)
        process.stdout.write(`${report.externalLayers.length} external (foreign) layer(s): referenced by descriptor, not stored\n`);
    }
    if (report.problems.length > 0) process.exitCode = 1;
  });
}

/** `list` and `stats` go on without a bad record or name, and say so on stderr (stdout stays data). */
export function warnSkipped(note: PlanSkip): void {
  for (const problem of note.problems ?? []) process.stderr.write(`warning: skipped ${note.repository}: ${problem}\n`);
}
