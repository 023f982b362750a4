// Prune Lambda (optional workflow step, EcrBackup `prune` prop): after a backup run is summarized,
// applies the stack's retention rule to the store (core/store/prune.ts), writes the full prune
// report to runs/<run>/prune.json and returns the run summary with the prune counts added. It also
// aborts incomplete multipart uploads that got no part for the grace period (killed runs' leftovers;
// a bucket the stack did not create may have no lifecycle rule for them). A dry-run
// execution prunes as a dry run. Objects under S3 Object Lock are counted, not errors; failed
// deletions, unreadable images or conflicts with a concurrent backup fail the execution.
import { redactingErrors } from '../core/redact.ts';
import { z } from 'zod';
import { describeIssues } from '../schema/contract.ts';
import { ENV, PRUNE_ENV } from '../schema/environment.ts';
import { retentionRuleProblem } from '../schema/retention.ts';
import { log } from '../core/log.ts';
import { DEFAULT_GRACE_MS, pruneStore } from '../core/store/prune.ts';
import { backupStoreAt, withLambdaContext } from './runtime.ts';

/** Environment variables the construct sets on this function (besides STORE_URL). */

const optionalNumber = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : Number(v)));

const PruneEnvironment = z
  .object({
    [ENV.STORE_URL]: z.string().regex(/^s3:\/\/[^/]+(\/.*)?$/, 'must be s3://bucket/prefix'),
    [PRUNE_ENV.KEEP_LAST]: optionalNumber,
    [PRUNE_ENV.KEEP_DAYS]: optionalNumber,
    [PRUNE_ENV.GRACE_SECONDS]: optionalNumber.pipe(z.number().nonnegative().optional()),
  })
  .superRefine((env, context) => {
    const problem = retentionRuleProblem({ keepLast: env[PRUNE_ENV.KEEP_LAST], keepDays: env[PRUNE_ENV.KEEP_DAYS] });
    if (problem) context.addIssue({ code: 'custom', message: `${PRUNE_ENV.KEEP_LAST}/${PRUNE_ENV.KEEP_DAYS}: ${problem}` });
  });

export interface PruneEvent {
  runId: string;
  /** The summary Lambda's output, passed through to the execution's output. */
  summary: Record<string, unknown>;
  /** The execution input (`$$.Execution.Input`), for dryRun. */
  input?: { dryRun?: unknown } | null;
}

export interface PruneSummary {
  dryRun: boolean;
  recordsDropped: number;
  blobsDeleted: number;
  bytesFreed: number;
  bytesNoncurrent: number;
  locked: number;
  failed: number;
  conflicts: number;
  /** Incomplete multipart uploads of killed runs aborted (dry run: that would be). */
  abandonedUploads: number;
  sweep: string;
  reportKey: string;
}

export class PruneFailedError extends Error {
  override name = 'PruneFailedError';
}

/** The execution failure cause this handler throws is redacted (core/redact.ts). */
export const handler = withLambdaContext(redactingErrors(handle));

async function handle(event: PruneEvent): Promise<Record<string, unknown> & { prune: PruneSummary }> {
  const parsed = PruneEnvironment.safeParse(process.env);
  if (!parsed.success) throw new Error(`the prune Lambda is misconfigured: ${describeIssues(parsed.error)}`);
  const env = parsed.data;
  const store = backupStoreAt(env[ENV.STORE_URL]);
  const dryRun = event.input?.dryRun === true;
  const graceSeconds = env[PRUNE_ENV.GRACE_SECONDS];
  const graceMs = graceSeconds !== undefined ? graceSeconds * 1000 : DEFAULT_GRACE_MS;
  const report = await pruneStore(store, {
    ...(env[PRUNE_ENV.KEEP_LAST] !== undefined ? { keepLast: env[PRUNE_ENV.KEEP_LAST] } : {}),
    ...(env[PRUNE_ENV.KEEP_DAYS] !== undefined ? { keepDays: env[PRUNE_ENV.KEEP_DAYS] } : {}),
    graceMs,
    // No backup task runs longer than the grace, so an upload without a new part for that long is a killed run's.
    abandonedWritesAgeMs: graceMs,
    // S3 answers small GETs in tens of ms: 64 in flight mark ~2,000 manifests a second (README, scale).
    concurrency: 64,
    dryRun,
  });
  const reportKey = await store.runs.writePruneReport(event.runId, report);
  const prune: PruneSummary = {
    dryRun,
    recordsDropped: report.records.dropped,
    blobsDeleted: report.blobs.deleted,
    bytesFreed: report.blobs.bytesFreed,
    bytesNoncurrent: report.bytesNoncurrent,
    locked: report.locked.length,
    failed: report.failed.length,
    conflicts: report.conflicts.length,
    abandonedUploads: report.abandonedWrites?.length ?? 0,
    sweep: report.sweep,
    reportKey,
  };
  log('info', 'store pruned', { runId: event.runId, ...prune });
  if (report.failed.length > 0 || report.problems.length > 0 || report.conflicts.length > 0) {
    throw new PruneFailedError(
      `prune after run ${event.runId}: ${report.failed.length} failed deletion(s), ${report.problems.length} unreadable image(s), ` +
        `${report.conflicts.length} conflict(s) with a concurrent backup; report: ${reportKey}`,
    );
  }
  return { ...event.summary, prune };
}
