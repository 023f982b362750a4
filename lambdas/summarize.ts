// Summary Lambda: gathers the results the workers wrote (one object per finished batch, per-image
// objects for a batch whose task died part-way), counts an image whose batch left
// no result as failed (its Fargate task died or never started), writes runs/<run>/report.json (+ report.md),
// logs the run's metrics (EMF), notifies on failures, and fails the execution when failures exceed the
// tolerance, with the counts in the cause.
import { redactingErrors } from '../core/redact.ts';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import {
  type BatchRef,
  type DeletedTag,
  type ImageResult,
  ListingOutput,
  RepositoryNote,
  type RunCounts,
  type RunReport,
} from '../schema/contract.ts';
import { ENV, loadSummaryEnvironment, TRACK_BACKUP_AGE_ENV } from '../schema/environment.ts';
import { buildReport, writeRunReport } from '../core/engine/report.ts';
import { uncopiedResult } from '../core/engine/run.ts';
import { movedLine, movedTags } from '../core/engine/moved.ts';
import { mapLimited } from '../core/limiter.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { NotFoundError } from '../core/store/object-store.ts';
import { log } from '../core/log.ts';
import { publishBackupAges, updateBackupAges } from './backup-age.ts';
import { backupStoreAt, metricsIn, perContainer, withLambdaContext } from './runtime.ts';

export interface SummarizeEvent {
  runId: string;
  mode: 'backup' | 'restore';
  listing: ListingOutput;
  /** Set by the Map's Catch when the Map itself failed (e.g. its tolerated failure was exceeded). */
  mapFailed?: { Error?: string; Cause?: string };
}

export class RunFailedError extends Error {
  override name = 'RunFailedError';
}

export interface SummaryOutput {
  runId: string;
  counts: RunCounts;
  reportKey: string;
}

/** The execution failure cause this handler throws is redacted (core/redact.ts). */
export const handler = withLambdaContext(redactingErrors(handle));

const snsClient = perContainer(() => new SNSClient({}));

async function handle(event: SummarizeEvent): Promise<SummaryOutput> {
  const env = loadSummaryEnvironment();
  const listing = ListingOutput.parse(event.listing);
  const store = backupStoreAt(env[ENV.STORE_URL]);
  const results = await collectResults(store, listing, event.mapFailed);
  const report = buildReport(listing.runId, listing.mode, new Date(listing.startedAt), results);
  // Images the listing found already backed up are part of the run's picture, not of its work.
  report.counts.images += listing.unchangedCount;
  report.counts.unchanged += listing.unchangedCount;
  const notes = await collectNotes(store, listing.runId);
  if (notes.length) report.repositoryNotes = notes;
  const deleted = listing.deletedCount ? await readDeleted(store, listing.runId) : [];
  if (deleted.length) report.deletedAtSource = deleted;
  const { json: reportKey } = await writeRunReport(store, report);
  log('info', 'run summarized', { runId: listing.runId, ...report.counts });

  publishMetrics(env[ENV.METRICS_NAMESPACE], report);
  // The dashboard's per-repository backup age and the RPO alarm (EcrBackup `dashboard` prop).
  if (process.env[TRACK_BACKUP_AGE_ENV] === '1') {
    await updateBackupAges(store, report)
      .then((ages) => publishBackupAges(metricsIn(env[ENV.METRICS_NAMESPACE]), ages))
      .catch((error: unknown) => log('warn', 'cannot update the backup ages', { runId: report.runId, error }));
  }
  const { failed, images } = report.counts;
  const notice = notificationText(report, store.runs.whereReport(report.runId));
  if (notice && env[ENV.TOPIC_ARN]) await snsClient('sns').send(new PublishCommand({ TopicArn: env[ENV.TOPIC_ARN], ...notice }));
  const tolerance = env[ENV.FAILURE_TOLERANCE_PERCENT];
  const percent = images === 0 ? 0 : (failed / images) * 100;
  if (failed > 0 && percent > tolerance) {
    throw new RunFailedError(
      `${failed} of ${images} image(s) failed (${percent.toFixed(1)}%, tolerance ${tolerance}%); ` +
        `first: ${report.failures[0]?.error ?? 'unknown'}; report: ${reportKey}`,
    );
  }
  return { runId: report.runId, counts: report.counts, reportKey };
}

async function collectResults(store: BackupStore, listing: ListingOutput, mapFailed: SummarizeEvent['mapFailed']): Promise<ImageResult[]> {
  if (listing.batchCount === 0) return [];
  const refs = await store.runs.readBatchList(listing.runId);
  const perBatch = await mapLimited(refs, 8, async (ref) => {
    // A finished batch left all its results in one object: one read per batch.
    const whole = await readBatchResults(store, listing.runId, ref);
    if (whole) return whole;
    const batch = await store.runs.readBatch(ref.batchKey);
    return mapLimited(batch.items, 16, async (item, index) => {
      try {
        return await store.runs.readResult(listing.runId, batch.index, index);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        const why = mapFailed?.Cause ?? mapFailed?.Error ?? 'its Fargate task stopped before recording it';
        return uncopiedResult(item, 'failed', {
          error: `${item.repository}:${item.tag ?? item.digest}: no result recorded for batch ${batch.index} (${why})`,
        });
      }
    });
  });
  return perBatch.flat();
}

/** The batch's results object, when its task finished and it holds one valid result per item; else undefined. */
async function readBatchResults(store: BackupStore, runId: string, ref: BatchRef): Promise<ImageResult[] | undefined> {
  try {
    const results = await store.runs.readBatchResults(runId, ref.index);
    return results.length === ref.items ? results : undefined;
  } catch (error) {
    if (!(error instanceof NotFoundError))
      log('warn', 'cannot read the batch results; reading per-image results', { runId, batch: ref.index, error });
    return undefined;
  }
}

/**
 * The repository notes the listing (settings recorded) and the workers (repositories created or
 * compared) wrote under runs/<run>/notes/, sorted by repository. A missing or unreadable file costs
 * the report its notes (the writer logged them), not the summary.
 */
async function collectNotes(store: BackupStore, runId: string): Promise<RepositoryNote[]> {
  const keys = await store.runs.notesFiles(runId);
  const perFile = await mapLimited(keys, 8, async (key) => {
    try {
      return RepositoryNote.array().parse(await store.runs.readNotes(key));
    } catch (error) {
      log('warn', 'cannot read repository notes', { runId, key, error });
      return [];
    }
  });
  const name = (n: RepositoryNote) => `${n.repository}\u0000${n.targetRepository ?? ''}`;
  return perFile.flat().sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
}

/** The tags the listing recorded as deleted at the source; unreadable: logged, the report goes without them. */
async function readDeleted(store: BackupStore, runId: string): Promise<DeletedTag[]> {
  try {
    return await store.runs.readDeleted(runId);
  } catch (error) {
    log('warn', 'cannot read the deleted tags', { runId, error });
    return [];
  }
}

/** The run's counts as EMF metrics (dimension Mode), the names the dashboard and alarms select. */
function publishMetrics(namespace: string, report: RunReport): void {
  const c = report.counts;
  const metrics = metricsIn(namespace);
  metrics.addDimension('Mode', report.mode);
  metrics.addMetric('ImagesCopied', MetricUnit.Count, c.copied);
  metrics.addMetric('ImagesUnchanged', MetricUnit.Count, c.unchanged);
  metrics.addMetric('ImagesFailed', MetricUnit.Count, c.failed);
  metrics.addMetric('BytesCopied', MetricUnit.Bytes, c.bytesCopied);
  metrics.addMetric('BytesDeduplicated', MetricUnit.Bytes, c.bytesDeduplicated);
  metrics.publishStoredMetrics();
}

const LISTED = 50;

/**
 * The SNS notification for a run: sent when images failed, or when a backup found tags moved to
 * another digest or deleted at the source (both change what a restore of "latest" brings back).
 * Undefined when there is nothing to tell.
 */
export function notificationText(report: RunReport, reportLocation: string): { Subject: string; Message: string } | undefined {
  const { failed, images } = report.counts;
  const moved = movedTags(report);
  const deleted = report.deletedAtSource ?? [];
  if (failed === 0 && moved.length === 0 && deleted.length === 0) return undefined;
  const changes = [moved.length ? `${moved.length} tag(s) moved` : '', deleted.length ? `${deleted.length} tag(s) deleted at source` : '']
    .filter(Boolean)
    .join(', ');
  const headline = failed > 0 ? `${failed} of ${images} image(s) failed` : changes;
  const list = <T>(items: readonly T[], line: (item: T) => string) => [
    ...items.slice(0, LISTED).map((item) => `- ${line(item)}`),
    ...(items.length > LISTED ? [`... and ${items.length - LISTED} more (see the report)`] : []),
  ];
  return {
    Subject: `ecr-backup ${report.mode} ${report.runId}: ${headline}`.slice(0, 100),
    Message: [
      `${failed > 0 ? headline : `${images} image(s) backed up; ${changes}`} in ${report.mode} run ${report.runId}.`,
      `Report: ${reportLocation}`,
      ...(failed > 0 ? ['', ...list(report.failures, (f) => f.error ?? `${f.repository}:${f.tag ?? f.digest ?? ''}`)] : []),
      ...(moved.length ? ['', 'Moved tags:', ...list(moved, movedLine)] : []),
      ...(deleted.length
        ? ['', 'Deleted at source:', ...list(deleted, (d) => `tag ${d.repository}:${d.tag} deleted at source (was ${d.lastDigest})`)]
        : []),
    ].join('\n'),
  };
}
