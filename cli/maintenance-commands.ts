// `prune`, `stats` and `report`: keeping a backup store in shape and looking at what it holds.
import { writeFile } from 'node:fs/promises';
import { renderReportHtml } from '../core/engine/report-html.ts';
import { rejectedRecordNotes } from '../core/engine/plan.ts';
import { warnSkipped } from './store-commands.ts';
import type { Command } from 'commander';
import { RunReport } from '../schema/contract.ts';
import { retentionRuleProblem } from '../schema/retention.ts';
import { renderReportMarkdown } from '../core/engine/report.ts';
import { NotFoundError } from '../core/store/object-store.ts';
import { DEFAULT_GRACE_MS, pruneStore, type PruneReport } from '../core/store/prune.ts';
import { storeStats } from '../core/store/stats.ts';
import { PRICE_SOURCE } from '../core/store/cost.ts';
import { openBackupStore, UsageError } from './endpoints.ts';
import { formatBytes, table } from './format.ts';

/** Temp files and multipart uploads untouched this long belong to no running backup. */
const ABANDONED_WRITES_AGE_MS = 24 * 3_600_000;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90`, `90s`, `15m`, `1h`, `2d`, `500ms` -> milliseconds (a bare number is seconds). */
function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--grace must be a duration such as 30s, 15m, 1h or 2d, got ${JSON.stringify(value)}`);
  return Number(m[1]) * UNITS[m[2] ?? 's']!;
}

function describeGrace(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) if (ms >= UNITS[unit]! && ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  return `${ms}ms`;
}

function printPrune(report: PruneReport, store: string): void {
  const rule = [
    report.rule.keepLast !== undefined ? `keep last ${report.rule.keepLast}` : undefined,
    report.rule.keepDays !== undefined ? `keep ${report.rule.keepDays} day(s)` : undefined,
    `grace ${describeGrace(report.rule.graceSeconds * 1000)}`,
  ].filter(Boolean);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const b = report.blobs;
  if (report.dryRun) {
    out(
      `dry run, ${store} (${rule.join(', ')}): would drop ${report.records.dropped} of ${report.records.total} catalog record(s) ` +
        `and delete ${b.deleted} of ${b.total} blob(s), ${formatBytes(b.bytesFreed)}`,
    );
  } else {
    out(
      `pruned ${store} (${rule.join(', ')}): dropped ${report.records.dropped} of ${report.records.total} catalog record(s), ` +
        `deleted ${b.deleted} of ${b.total} blob(s), freed ${formatBytes(b.bytesFreed)}`,
    );
  }
  for (const r of report.droppedRecords.slice(0, 20))
    out(`  ${report.dryRun ? 'would drop' : 'dropped'} ${r.repository}:${r.tag ?? '<untagged>'} ${r.digest} (${r.backedUpAt})`);
  if (report.droppedRecords.length > 20) out(`  ... and ${report.droppedRecords.length - 20} more record(s) (--json lists all)`);
  out(
    `  kept ${report.records.kept} record(s); ${b.referenced} blob(s) referenced, ${b.withinGrace} unreferenced blob(s) newer than the grace period kept`,
  );
  if (report.deleteMarkers > 0) {
    out(
      `  versioned bucket: ${report.deleteMarkers} delete marker(s) added; ${formatBytes(report.bytesNoncurrent)} of blobs stay as noncurrent versions ` +
        `until the bucket's lifecycle expires them`,
    );
  }
  if (report.locked.length > 0) {
    out(`  ${report.locked.length} object(s) retained by Object Lock, left in place:`);
    for (const l of report.locked.slice(0, 20)) out(`    ${l.key}: ${l.detail}`);
    if (report.locked.length > 20) out(`    ... and ${report.locked.length - 20} more`);
  }
  if (report.dryRun) out('  (a dry run does not check Object Lock)');
  const leftovers = report.abandonedWrites ?? [];
  if (leftovers.length > 0) {
    out(
      `  ${report.dryRun ? 'would remove' : 'removed'} ${leftovers.length} leftover(s) of killed runs (temp files, incomplete multipart uploads) untouched for 24 h:`,
    );
    for (const l of leftovers.slice(0, 20))
      out(`    ${l.key} (since ${l.since}${l.bytes !== undefined ? `, ${formatBytes(l.bytes)}` : ''})`);
    if (leftovers.length > 20) out(`    ... and ${leftovers.length - 20} more`);
  }
  for (const f of report.failed) out(`  failed to delete ${f.key}: ${f.error}`);
  if (report.sweep === 'skipped') out(`  blobs not swept: ${report.sweepSkippedReason}`);
  for (const p of report.problems.slice(0, 20)) out(`  ${p.problem}: ${p.record}: ${p.detail}`);
  for (const c of report.conflicts)
    out(`  conflict: ${c.key} was written during the prune and names deleted blob ${c.blob}; run that backup again`);
}

export function registerMaintenanceCommands(program: Command): void {
  program
    .command('prune')
    .description('drop catalog history beyond a retention rule and delete the blobs nothing references any more')
    .requiredOption('--from <store>', 'backup store')
    .option('--keep-last <n>', 'per tag, keep the N newest records', (value) => Number(value))
    .option('--keep-days <d>', 'keep records newer than D days, and the value each tag had D days ago', (value) => Number(value))
    .option('--grace <duration>', 'never delete a blob modified this recently (protects a backup running meanwhile)', '1h')
    .option('--dry-run', 'report what would be dropped and deleted, delete nothing')
    .option('--json', 'print the prune report as JSON')
    .action(async (options: { from: string; keepLast?: number; keepDays?: number; grace: string; dryRun?: boolean; json?: boolean }) => {
      const rule = {
        ...(options.keepLast !== undefined ? { keepLast: options.keepLast } : {}),
        ...(options.keepDays !== undefined ? { keepDays: options.keepDays } : {}),
      };
      const problem = retentionRuleProblem(rule);
      if (problem) throw new UsageError(`prune: ${problem}`);
      const graceMs = parseDuration(options.grace ?? `${DEFAULT_GRACE_MS / 1000}`);
      const store = openBackupStore(options.from, { existing: true });
      const report = await pruneStore(store, {
        ...rule,
        graceMs,
        abandonedWritesAgeMs: ABANDONED_WRITES_AGE_MS,
        dryRun: options.dryRun,
        onProgress: (message) => {
          if (!options.json && process.stderr.isTTY) process.stderr.write(`${message}\n`);
        },
      });
      if (options.json) process.stdout.write(`${JSON.stringify({ store: store.description, ...report }, null, 2)}\n`);
      else printPrune(report, store.description);
      if (report.failed.length > 0 || report.problems.length > 0 || report.conflicts.length > 0) process.exitCode = 1;
    });

  program
    .command('stats')
    .description('storage report: logical and stored bytes, dedup ratio, per repository, oldest and newest backup')
    .requiredOption('--from <store>', 'backup store')
    .option('--json', 'print JSON')
    .action(async (options: { from: string; json?: boolean }) => {
      const store = openBackupStore(options.from, { existing: true });
      const stats = await storeStats(store);
      for (const note of rejectedRecordNotes(store.rejectedRecords())) warnSkipped(note);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
        return;
      }
      const t = stats.totals;
      const rows = stats.repositories.map((r) => [
        r.repository,
        String(r.tags),
        String(r.untagged),
        String(r.records),
        formatBytes(r.logicalBytes),
        formatBytes(r.currentLogicalBytes),
        formatBytes(r.storedBytes),
        r.oldestBackup ?? '',
        r.newestBackup ?? '',
      ]);
      process.stdout.write(`store ${stats.store}\n`);
      if (rows.length)
        process.stdout.write(
          table(['REPOSITORY', 'TAGS', 'UNTAGGED', 'RECORDS', 'LOGICAL', 'CURRENT', 'STORED', 'OLDEST BACKUP', 'NEWEST BACKUP'], rows) +
            '\n',
        );
      const ratio = t.dedupRatio === null ? 'n/a' : `${t.dedupRatio.toFixed(2)}x`;
      process.stdout.write(
        `total: ${t.repositories} repositories, ${t.tags} tags, ${t.untagged} untagged, ${t.records} records; ` +
          `logical ${formatBytes(t.logicalBytes)} (current images ${formatBytes(t.currentLogicalBytes)}), ` +
          `stored ${formatBytes(t.storedBytes)} in ${t.blobs} blobs${t.archiveBytes ? ` + ${formatBytes(t.archiveBytes)} of archives` : ''}; dedup ratio ${ratio}\n`,
      );
      process.stdout.write(
        `unreferenced blobs: ${formatBytes(t.unreferencedBytes)} (prune collects them); catalog: ${formatBytes(t.catalogBytes)}\n`,
      );
      if (t.oldestBackup) process.stdout.write(`oldest backup ${t.oldestBackup}, newest ${t.newestBackup}\n`);
      if (t.unreadableImages) process.stdout.write(`${t.unreadableImages} image(s) could not be read; run verify\n`);
      const classes = t.storageClasses.map(
        (c) => `${c.storageClass} ${formatBytes(c.bytes)}${c.monthlyUsd === null ? ' (no list price)' : ` $${c.monthlyUsd.toFixed(2)}`}`,
      );
      process.stdout.write(`monthly storage estimate: $${t.monthlyStorageUsd.toFixed(2)} (${classes.join(', ')}; ${PRICE_SOURCE})\n`);
    });

  program
    .command('report')
    .description('print the report of the latest run, or of RUN')
    .argument('[run]', 'run id (runs/<run>/report.json); default: the latest run')
    .requiredOption('--from <store>', 'backup store')
    .option('--json', 'print report.json')
    .option('--html [file]', 'write a self-contained HTML page (default: report-<run>.html here)')
    .action(async (run: string | undefined, options: { from: string; json?: boolean; html?: string | true }) => {
      const store = openBackupStore(options.from, { existing: true });
      if (run !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(run))
        throw new UsageError(`invalid run id ${JSON.stringify(run)}`);
      const runId = run ?? (await store.runs.latestReportRunId());
      if (runId === undefined) throw new UsageError(`no run reports in ${store.description}`);
      let raw: unknown;
      try {
        raw = await store.runs.readReport(runId);
      } catch (error) {
        if (error instanceof NotFoundError) throw new UsageError(`no report for run ${runId} in ${store.description}`);
        throw error;
      }
      const parsed = RunReport.safeParse(raw);
      if (!parsed.success) throw new Error(`${store.runs.whereReport(runId)} is not a run report: ${parsed.error.message}`);
      if (options.html) {
        const file = options.html === true ? `report-${runId}.html` : options.html;
        await writeFile(file, renderReportHtml(parsed.data));
        process.stdout.write(`wrote ${file}\n`);
      } else if (options.json) process.stdout.write(`${JSON.stringify(raw, null, 2)}\n`);
      else process.stdout.write(renderReportMarkdown(parsed.data));
    });
}
