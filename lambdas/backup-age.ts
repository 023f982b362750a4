// Per-repository backup age (for the dashboard and the RPO alarm; EcrBackup `dashboard` prop). After
// a backup run the summary Lambda calls this: every repository the run covered without a failed
// image gets "now" as its last successful backup in runs/_status/last-backups.json (rewritten each
// run, so the runs/ expiry never removes it), then the age of every repository in that file is
// logged as EMF metrics LastBackupAgeSeconds (dimension Repository) and the oldest as OldestBackupAgeSeconds.
// Two runs finishing at once may lose one update; the next run writes it again (times only grow).
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import type { RunReport } from '../schema/contract.ts';
import { BACKUP_AGE_METRICS } from '../schema/environment.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { NotFoundError } from '../core/store/object-store.ts';

/** Set to `1` on the summary Lambda by the dashboard construct (which grants the status file's write). */
const LastBackups = z.record(z.string(), z.iso.datetime());

/** Repositories a backup run covered (images in its results, or planned by its listing) with no failed image. */
export function repositoriesBackedUp(report: RunReport): string[] {
  if (report.mode !== 'backup' || report.counts.planned > 0) return [];
  const covered = new Set([...report.results.map((r) => r.repository), ...(report.repositoryNotes ?? []).map((n) => n.repository)]);
  for (const f of report.failures) covered.delete(f.repository);
  return [...covered].sort();
}

export async function updateBackupAges(store: BackupStore, report: RunReport, now = new Date()): Promise<Record<string, number>> {
  let last: Record<string, string> = {};
  try {
    last = LastBackups.parse(await store.runs.readLastBackups());
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
  const backedUp = repositoriesBackedUp(report);
  for (const repository of backedUp) last[repository] = now.toISOString();
  if (backedUp.length) await store.runs.writeLastBackups(last);
  return Object.fromEntries(
    Object.entries(last).map(([repository, time]) => [repository, Math.max(0, Math.round((now.getTime() - Date.parse(time)) / 1000))]),
  );
}

/** Each repository's age (dimension Repository, one EMF object each) and the oldest (no dimension). */
export function publishBackupAges(metrics: Metrics, ages: Record<string, number>): void {
  const entries = Object.entries(ages);
  if (entries.length === 0) return;
  for (const [repository, age] of entries) {
    metrics.addDimension('Repository', repository);
    metrics.addMetric(BACKUP_AGE_METRICS.perRepository, MetricUnit.Seconds, age);
    metrics.publishStoredMetrics();
  }
  // An empty dimension set: the metric without dimensions, as the RPO alarm selects it.
  metrics.addDimensions({});
  metrics.addMetric(BACKUP_AGE_METRICS.oldest, MetricUnit.Seconds, Math.max(...entries.map(([, age]) => age)));
  metrics.publishStoredMetrics();
}
