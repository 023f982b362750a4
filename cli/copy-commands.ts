// `backup` and `restore`: the copy engine between a registry and a backup store, in either direction.
import { Option, type Command } from 'commander';
import { buildReport, newRunId, writeRunReport } from '../core/engine/report.ts';
import { errorText, redact } from '../core/redact.ts';
import { copyImages } from '../core/engine/run.ts';
import { runBackup } from '../core/engine/backup.ts';
import { movedLine, movedTags } from '../core/engine/moved.ts';
import type { ProgressEvent } from '../core/engine/copy.ts';
import { planImages, rejectedRecordNotes } from '../core/engine/plan.ts';
import { RestoreTarget, type DeletedTag, type ImageResult, type RepositoryNote, type RunReport } from '../schema/contract.ts';
import { openBackupStore, openRegistry, readPasswordFromStdin, UsageError } from './endpoints.ts';
import { addFilterOptions, addRegistryOptions, addRunOptions, type CommonOptions } from './options.ts';
import { createProgress } from './progress.ts';
import { formatBytes, table } from './format.ts';
import { ArchiveError, archiveHandler, resolveArchiveSettings, type ArchiveSettings } from '../core/archive/archive.ts';

interface ArchiveOptions {
  format?: 'oci' | 'docker-archive';
  label?: string;
  compression?: string;
  platform?: string;
}

/** Backup's format options, checked before anything runs (exit 2 on a bad value). */
function archiveSettingsFromOptions(options: ArchiveOptions): ArchiveSettings | undefined {
  const given = (['label', 'compression', 'platform'] as const).filter((name) => options[name] !== undefined);
  if ((options.format ?? 'oci') === 'oci') {
    if (given.length) throw new UsageError(`--${given[0]} applies to --format docker-archive only`);
    return undefined;
  }
  try {
    return resolveArchiveSettings({ ...options, region: process.env.AWS_REGION });
  } catch (error) {
    if (error instanceof ArchiveError) throw new UsageError(error.message);
    throw error;
  }
}

async function runCopy(
  mode: RunReport['mode'],
  options: CommonOptions & {
    includeUntagged?: boolean;
    asOf?: string;
    repositoryPrefix?: string;
    applyPolicies?: boolean;
    to?: string;
    from?: string;
  } & ArchiveOptions,
) {
  const started = new Date();
  if (options.repositoryPrefix !== undefined && !RestoreTarget.shape.repositoryPrefix.safeParse(options.repositoryPrefix).success) {
    throw new UsageError(
      `--repository-prefix ${JSON.stringify(options.repositoryPrefix)} is not a valid repository prefix (lowercase path components, e.g. restored/)`,
    );
  }
  const archiveSettings = mode === 'backup' ? archiveSettingsFromOptions(options) : undefined;
  const store = openBackupStore((mode === 'backup' ? options.to : options.from)!, { asOf: options.asOf, existing: mode === 'restore' });
  if (options.passwordStdin) options.password = await readPasswordFromStdin();
  const registry = openRegistry(options);
  const [source, destination] = mode === 'backup' ? [registry, store] : [store, registry];
  // A bad repository, tag or catalog record is left out and reported; the rest of the run goes on.
  const skipped: RepositoryNote[] = [];
  const filters = {
    repositories: options.repositories,
    tags: options.tags,
    excludeTags: options.excludeTags,
    includeUntagged: options.includeUntagged,
  };
  const quiet = Boolean(options.json);
  let progress = createProgress(0, { quiet });
  const onProgress = (event: ProgressEvent) => progress.onEvent(event);
  const archive = archiveHandler({ mode, store, registry, format: options.format, settings: archiveSettings, onProgress });
  const repositoryNotes: RepositoryNote[] = [];
  let outcome: { planned: number; results: ImageResult[]; deleted: DeletedTag[] };
  if (mode === 'backup') {
    // Unchanged images are left out before copying; tags gone from the source are recorded.
    const backup = await runBackup({
      source,
      store,
      filters,
      ...(options.format ? { format: options.format } : {}),
      ...(archiveSettings ? { archiveSettings } : {}),
      dryRun: options.dryRun,
      imageConcurrency: options.concurrency,
      blobConcurrency: options.concurrency * 2,
      onProgress,
      onPlanned: (work) => (progress = createProgress(work.length, { quiet })),
      onSkip: (note) => skipped.push(note),
      archive,
    });
    repositoryNotes.push(...backup.notes);
    outcome = backup;
  } else {
    const items = await planImages(source, filters, 8, (note) => skipped.push(note));
    progress = createProgress(items.length, { quiet });
    const results = await copyImages({
      source,
      destination,
      items,
      repositoryPrefix: options.repositoryPrefix,
      imageConcurrency: options.concurrency,
      blobConcurrency: options.concurrency * 2,
      dryRun: options.dryRun,
      skipPolicies: !options.applyPolicies,
      onProgress,
      onRepositoryNote: (note) => repositoryNotes.push(note),
      archive,
    });
    outcome = { planned: items.length, results, deleted: [] };
  }
  progress.finish();
  const report: RunReport = buildReport(newRunId('cli'), mode, started, outcome.results);
  if (outcome.deleted.length) report.deletedAtSource = outcome.deleted;
  for (const note of [...skipped, ...rejectedRecordNotes(store.rejectedRecords())]) repositoryNotes.push(note);
  if (repositoryNotes.length)
    report.repositoryNotes = repositoryNotes.sort((a, b) => (a.repository < b.repository ? -1 : a.repository > b.repository ? 1 : 0));
  // The summary is printed (and --json written) even when the report cannot be stored: the images'
  // outcome must never be lost with it. Exit 3 says "images done, report not stored".
  let reportError: string | undefined;
  if (!options.dryRun && (outcome.planned > 0 || outcome.deleted.length > 0)) {
    try {
      await writeRunReport(store, report);
    } catch (error) {
      reportError = redact(`the run report could not be written to ${store.runs.whereRun(report.runId)}: ${errorText(error)}`);
    }
  }
  printRunSummary(report, source.description, destination.description, options, reportError);
  if (reportError) process.stderr.write(`ecr-backup: ${reportError}\n`);
  if (report.counts.failed > 0 || repositoryNotes.some((n) => n.action === 'skipped')) process.exitCode = 1;
  else if (reportError) process.exitCode = 3;
}

function printRunSummary(report: RunReport, from: string, to: string, options: CommonOptions, reportError?: string) {
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ ...report, source: from, destination: to, ...(reportError ? { reportError } : {}) }, null, 2)}\n`,
    );
    return;
  }
  const c = report.counts;
  if (options.dryRun) {
    const rows = report.results.map((r: ImageResult) => [r.repository, r.tag ?? '', r.digest ?? '', r.targetRepository ?? '']);
    if (rows.length) process.stdout.write(`${table(['REPOSITORY', 'TAG', 'DIGEST', 'TARGET'], rows)}\n`);
    process.stdout.write(`dry run: ${c.images} image(s) would be copied from ${from} to ${to}\n`);
    return;
  }
  process.stdout.write(
    `${report.mode} ${report.runId}: ${c.images} image(s) from ${from} to ${to}: ${c.copied} copied, ${c.unchanged} unchanged, ` +
      `${c.failed} failed; ${formatBytes(c.bytesCopied)} copied, ${formatBytes(c.bytesDeduplicated)} already present\n`,
  );
  for (const failure of report.failures) process.stdout.write(`  failed: ${failure.error}\n`);
  for (const m of movedTags(report)) process.stdout.write(`  ${movedLine(m)}\n`);
  for (const d of report.deletedAtSource ?? [])
    process.stdout.write(`  deleted at source since the last run: ${d.repository}:${d.tag} (was ${d.lastDigest})\n`);
  for (const line of archiveLines(report)) process.stdout.write(`  ${line}\n`);
  for (const line of repositoryNoteLines(report.repositoryNotes ?? [])) process.stdout.write(`  ${line}\n`);
}

/** docker-archive results in the text summary: the platform chosen from a multi-arch source, and the digest caveat. */
function archiveLines(report: RunReport): string[] {
  const lines: string[] = [];
  const archived = report.results.filter((r) => r.archive && r.status !== 'failed');
  for (const r of archived) {
    const name = `${r.targetRepository ?? r.repository}:${r.tag}`;
    const a = r.archive!;
    if (report.mode === 'backup' && a.sourcePlatforms && a.sourcePlatforms.length > 1) {
      lines.push(`${name}: multi-arch source (${a.sourcePlatforms.join(', ')}): docker-archive holds ${a.platform} only`);
    }
    if (report.mode === 'restore' && a.restoredDigest) {
      lines.push(
        `${name}: restored from docker-archive ${a.key} (${a.platform}) as ${a.restoredDigest}; the source manifest was ${r.digest}`,
      );
    }
  }
  if (archived.length) {
    lines.push(
      report.mode === 'backup'
        ? `${archived.length} image(s) stored as docker-archive: these keep the image ID (config digest), not the manifest digest; a restore gets new manifest digests`
        : `${archived.length} image(s) restored from docker-archive: same image ID (config digest), new manifest digest`,
    );
  }
  return lines;
}

/** Repository settings in the text summary: what was recorded or created, and every difference or problem. */
function repositoryNoteLines(notes: readonly RepositoryNote[]): string[] {
  const lines: string[] = [];
  for (const n of notes) {
    const name = n.targetRepository ?? n.repository;
    if (n.action === 'recorded') lines.push(`settings recorded: ${name}`);
    if (n.action === 'unrecorded') lines.push(`settings not recorded: ${name}`);
    if (n.action === 'created') {
      const skipped = n.skipped?.length ? ` (left out: ${n.skipped.join(', ')})` : '';
      lines.push(
        n.settingsApplied ? `created ${name} with the recorded settings${skipped}` : `created ${name} (no settings recorded in the backup)`,
      );
    }
    if (n.action === 'exists' && n.differences?.length) {
      lines.push(`${name} exists and was left unchanged; its settings differ from the backup:`);
      for (const d of n.differences) lines.push(`  - ${d}`);
    }
    if (n.action === 'skipped') for (const p of n.problems ?? []) lines.push(`skipped: ${name}: ${p}`);
    else for (const p of n.problems ?? []) lines.push(`settings problem: ${name}: ${p}`);
  }
  return lines;
}

export function registerCopyCommands(program: Command): void {
  addRunOptions(
    addFilterOptions(addRegistryOptions(program.command('backup').description('copy images from a registry into a backup store'))),
  )
    .requiredOption('--to <store>', 'backup store: s3://bucket/prefix, a directory, or file:///dir')
    .option('--include-untagged', 'also back up untagged images, by digest (ECR sources)')
    .addOption(
      new Option(
        '--format <format>',
        'oci: content-addressed blobs, restores digest for digest; docker-archive: one `docker load`-able tar per tag (keeps the image ID, not the manifest digest)',
      )
        .choices(['oci', 'docker-archive'])
        .default('oci'),
    )
    .option('--label <label>', 'docker-archive: first key segment, <label>/<repository>/<tag>.tar (default: $AWS_REGION, else local)')
    .addOption(
      new Option('--compression <compression>', 'docker-archive: compress each tar (default: none)').choices(['none', 'gzip', 'zstd']),
    )
    .option('--platform <os/arch>', 'docker-archive: the platform to keep from a multi-arch source (default: linux/amd64)')
    .action((options) => runCopy('backup', options));

  addRunOptions(
    addFilterOptions(addRegistryOptions(program.command('restore').description('copy images from a backup store into a registry'))),
  )
    .requiredOption('--from <store>', 'backup store: s3://bucket/prefix, a directory, or file:///dir')
    .option('--as-of <iso8601>', 'restore each tag as it was at this time (point in time)')
    .option('--repository-prefix <prefix>', 'prepend this to every restored repository name (e.g. restored/)')
    .option(
      '--apply-policies',
      'also set the recorded lifecycle and repository policies on repositories the restore creates (off: a policy grants access)',
    )
    .action((options) => runCopy('restore', options));
}
