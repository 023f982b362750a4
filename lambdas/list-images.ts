// Listing Lambda: validates the execution input, lists what to copy (ECR for a backup, the store's
// catalog for a restore), leaves out images the store already holds under the same tag, and writes
// the work to the store as batches. It returns counts and keys only: Step Functions payloads stop at
// 256 KiB, and an account may hold tens of thousands of tags.
import { redactingErrors } from '../core/redact.ts';
import {
  type BatchRef,
  InvalidInputError,
  ListingOutput,
  parseExecutionInput,
  runKeys,
  type ExecutionInput,
  type RepositoryNote,
  type WorkBatch,
  type WorkItem,
} from '../schema/contract.ts';
import { ENV, loadListingEnvironment } from '../schema/environment.ts';
import { planImages, rejectedRecordNotes } from '../core/engine/plan.ts';
import { recordRepositorySettings, targetRepositoryName } from '../core/engine/run.ts';
import { matchesFilters } from '../schema/glob.ts';
import { mapLimited } from '../core/limiter.ts';
import { EcrEndpoint } from '../core/registry/ecr.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { S3ObjectStore } from '../core/store/s3.ts';
import { log } from '../core/log.ts';
import type { ImageEndpoint, ImageListing } from '../core/model/endpoint.ts';
import { batchItems } from '../core/engine/batching.ts';
import { resolveArchiveSettings } from '../core/archive/settings.ts';
import { recordingListings, splitUnchanged } from '../core/engine/unchanged.ts';
import { backupStoreAt, perContainer, withLambdaContext } from './runtime.ts';
import { openDamageMarks, withRepairs } from '../core/engine/damage-marks.ts';

export interface ListImagesEvent {
  /** The execution ARN (`$$.Execution.Id`); its last segment, the execution name, is the run id. */
  executionId: string;
  input: unknown;
}

/** The execution failure cause this handler throws is redacted (core/redact.ts). */
export const handler = withLambdaContext(redactingErrors(handle));

/** The ECR endpoint (client, authorization) for the container's life; keyed by the registry URL override. */
const ecrAt = perContainer(
  (registryUrl) => new EcrEndpoint({ region: process.env[ENV.AWS_REGION], registryUrl: registryUrl || undefined }),
);

async function handle(event: ListImagesEvent): Promise<ListingOutput> {
  const startedAt = new Date().toISOString();
  const input = parseExecutionInput(event.input);
  const env = loadListingEnvironment();
  const runId = event.executionId.split(':').at(-1)!;
  const store = backupStoreAt(env[ENV.STORE_URL], { runId });
  if (!(store.objects instanceof S3ObjectStore)) throw new Error(`${ENV.STORE_URL} must be an s3:// URL for the workflow`);

  // A manual run narrows what the stack protects; it cannot reach beyond it (the roles could not either).
  const filters = {
    repositories: input.repositories,
    within: input.mode === 'backup' ? env[ENV.PROTECTED_REPOSITORIES] : undefined,
    tags: input.tags,
    excludeTags: input.excludeTags,
    includeUntagged: input.includeUntagged,
    images: input.images,
  };
  // Backup: the stored form (docker-archive settings resolved here, so every batch agrees).
  const format = input.mode === 'backup' ? (input.format ?? env[ENV.IMAGE_FORMAT]) : undefined;
  const archive =
    format === 'docker-archive'
      ? resolveArchiveSettings({
          ...input,
          label: input.label ?? env[ENV.ARCHIVE_LABEL],
          compression: input.compression ?? env[ENV.ARCHIVE_COMPRESSION],
          region: env[ENV.AWS_REGION],
        })
      : undefined;
  if (archive) assertArchiveLabel(archive.label, env[ENV.ARCHIVE_LABELS]);
  let items: WorkItem[];
  let unchangedCount = 0;
  let settingsRecorded: number | undefined;
  let deletedCount: number | undefined;
  // A bad repository, tag or catalog record is left out of the run and reported in its notes.
  const skipped: RepositoryNote[] = [];
  const onSkip = (note: RepositoryNote) => skipped.push(note);
  if (input.mode === 'backup') {
    const source = ecrAt(env[ENV.ECR_REGISTRY_URL] ?? '');
    // planImages leaves the digest out of tagged items; the ECR listing it read has it.
    const seen = new Map<string, ImageListing[]>();
    const listed = await planImages(recordingListings(source, seen), filters, 8, onSkip);
    const split = await splitUnchanged(source, store, listed, seen, {
      format: format!,
      ...(archive ? { settings: archive } : {}),
      recordDeletions: !input.dryRun,
    });
    // Images verify found damaged are copied again (repair mode) although their manifest is stored.
    const { work, unchanged } = withRepairs(split, await openDamageMarks(store));
    items = work;
    unchangedCount = unchanged.length;
    if (!input.dryRun) {
      deletedCount = split.deleted.length;
      // The summary puts these in the run report; a lost file costs the report its list (the tombstones stay).
      if (deletedCount)
        await store
          .writeJson(runKeys.deleted(runId), split.deleted)
          .catch((error: unknown) => log('warn', 'cannot write the deleted tags', { runId, error }));
    }
    // Every planned repository's settings, whether or not any of its images changed (the workers
    // only see repositories with work, and leave settings to this step).
    if (!input.dryRun) settingsRecorded = await recordSettings(source, store, runId, [...seen.keys()].sort(), skipped);
    else await writeListingNotes(store, runId, skipped);
  } else {
    assertRestoreTarget(input, env[ENV.AWS_REGION]);
    const view = input.asOf ? store.atTime(new Date(input.asOf)) : store;
    items = await planImages(view, filters, 8, onSkip);
    assertRestoreScope(items, input.target?.repositoryPrefix, env[ENV.RESTORE_REPOSITORIES] ?? env[ENV.PROTECTED_REPOSITORIES]);
    for (const note of rejectedRecordNotes(view.rejectedRecords())) skipped.push(note);
    await writeListingNotes(store, runId, skipped);
  }

  const batches = batchItems(items, { maxBytes: env[ENV.BATCH_MAX_BYTES], maxImages: env[ENV.BATCH_MAX_IMAGES] });
  const refs: BatchRef[] = await mapLimited(batches, 16, async (batchItemsOfOne, index) => {
    const batch: WorkBatch = {
      runId,
      index,
      mode: input.mode,
      ...(input.asOf ? { asOf: input.asOf } : {}),
      ...(input.target ? { target: input.target } : {}),
      ...(input.applyPolicies ? { applyPolicies: true } : {}),
      ...(input.dryRun ? { dryRun: true } : {}),
      ...(format ? { format } : {}),
      ...(archive ? { label: archive.label, compression: archive.compression, platform: archive.platform } : {}),
      items: batchItemsOfOne,
    };
    const batchKey = runKeys.batch(runId, index);
    await store.writeJson(batchKey, batch);
    return { batchKey, index, items: batchItemsOfOne.length, bytes: batchItemsOfOne.reduce((n, i) => n + (i.sizeBytes ?? 0), 0) };
  });
  await store.writeJson(runKeys.batches(runId), refs);

  const output: ListingOutput = {
    runId,
    mode: input.mode,
    startedAt,
    bucket: store.objects.bucket,
    // The Map's ItemReader reads the bucket directly, so this key carries the store prefix.
    batchesKey: store.objects.prefix + runKeys.batches(runId),
    batchCount: refs.length,
    itemCount: items.length,
    unchangedCount,
    ...(settingsRecorded !== undefined ? { settingsRecorded } : {}),
    ...(deletedCount !== undefined ? { deletedCount } : {}),
  };
  log('info', 'listed images', { ...output });
  return ListingOutput.parse(output);
}

/**
 * Records the repositories' settings in the store (only new or changed ones are written) and the
 * notes in runs/<run>/notes/listing.json for the run report. Never fails the listing: a repository
 * whose settings could not be read or recorded is an `unrecorded` note, logged as a warning.
 * Returns how many repositories got a new settings record.
 */
async function recordSettings(
  source: ImageEndpoint,
  store: BackupStore,
  runId: string,
  repositories: string[],
  skipped: RepositoryNote[],
): Promise<number> {
  const notes = (await mapLimited(repositories, 8, (repository) => recordRepositorySettings(source, store, repository))).filter(
    (note): note is RepositoryNote => note !== undefined,
  );
  await writeListingNotes(store, runId, [...skipped, ...notes]);
  return notes.filter((n) => n.action === 'recorded').length;
}

/** The listing's notes (skipped entries, settings) in runs/<run>/notes/listing.json; problems logged. */
async function writeListingNotes(store: BackupStore, runId: string, notes: RepositoryNote[]): Promise<void> {
  for (const note of notes) {
    if (note.problems?.length)
      log('warn', note.action === 'skipped' ? 'skipped' : `repository settings ${note.action}`, { runId, ...note });
  }
  if (!notes.length) return;
  try {
    await store.writeJson(runKeys.notes(runId, 'listing'), notes);
  } catch (error) {
    log('warn', 'cannot write the repository notes', { runId, error });
  }
}

/** The task roles may write and read archives under the stack's labels only: another label is refused up front. */
function assertArchiveLabel(label: string, allowed: readonly string[] | undefined): void {
  if (allowed && !allowed.includes(label)) {
    throw new InvalidInputError(
      `invalid execution input: label ${label} is not one of the stack's archive labels (${allowed.join(', ')}); add it to the archiveLabels prop`,
    );
  }
}

/** The restore role can write only in the stack's region: a target elsewhere (same account) is refused up front. */
function assertRestoreTarget(input: ExecutionInput, region: string | undefined): void {
  if (input.target?.region && !input.target.accountId && region && input.target.region !== region) {
    throw new InvalidInputError(
      `invalid execution input: target.region ${input.target.region} is not this stack's region ${region}; restore with a stack deployed there`,
    );
  }
}

/** Every repository the restore would write (prefix applied) must be one the stack allows. */
function assertRestoreScope(items: readonly WorkItem[], prefix: string | undefined, allowed: readonly string[]): void {
  const outside = [...new Set(items.map((i) => targetRepositoryName(i.repository, prefix)))].filter(
    (name) => !matchesFilters(name, allowed),
  );
  if (outside.length) {
    throw new InvalidInputError(
      `invalid execution input: restore would write ${outside.slice(0, 5).join(', ')}${outside.length > 5 ? ` and ${outside.length - 5} more` : ''}, ` +
        `outside the stack's restoreRepositories (${allowed.join(', ')}); narrow repositories or change target.repositoryPrefix`,
    );
  }
}
