// Listing Lambda: validates the execution input and lists what to copy. A backup is listed in shards
// (lambdas/list-shards.ts: this invocation plans them, `List shard` and `Merge shards` call this
// function again); a restore lists the store's catalog here, unsharded. Either way the work ends up in
// the store as batches, and the state gets counts and keys only: Step Functions payloads stop at
// 256 KiB, and an account may hold tens of thousands of tags.
import { redactingErrors } from '../core/redact.ts';
import {
  InvalidInputError,
  ListingOutput,
  parseExecutionInput,
  type ExecutionInput,
  type RepositoryNote,
  type WorkItem,
} from '../schema/contract.ts';
import { ENV, loadListingEnvironment } from '../schema/environment.ts';
import { ListShardEvent, MergeShardsEvent, type ShardedListingPlan } from '../schema/listing-shards.ts';
import { planImages, rejectedRecordNotes } from '../core/engine/plan.ts';
import { targetRepositoryName } from '../core/engine/run.ts';
import { writeBatches } from '../core/engine/write-batches.ts';
import { matchesFilters } from '../schema/glob.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { log } from '../core/log.ts';
import { listOneShard, mergeListing, planBackupListing } from './list-shards.ts';
import { backupStoreAt, withLambdaContext } from './runtime.ts';

export interface ListImagesEvent {
  /** The execution ARN (`$$.Execution.Id`); its last segment, the execution name, is the run id. */
  executionId: string;
  input: unknown;
}

/** The execution failure cause this handler throws is redacted (core/redact.ts). */
export const handler = withLambdaContext(redactingErrors(handle));

async function handle(event: ListImagesEvent | ListShardEvent | MergeShardsEvent): Promise<ListingOutput | ShardedListingPlan | object> {
  const startedAt = new Date().toISOString();
  const env = loadListingEnvironment();
  // The sharded backup listing's later steps (lambdas/list-shards.ts) call this function too.
  if ('listShard' in event) return listOneShard(s3Store(env, event.listShard.runId), env, ListShardEvent.parse(event));
  if ('mergeShards' in event) return mergeListing(s3Store(env, event.mergeShards.runId), env, MergeShardsEvent.parse(event));
  const input = parseExecutionInput(event.input);
  const runId = event.executionId.split(':').at(-1)!;
  const store = s3Store(env, runId);
  if (input.mode === 'backup') return planBackupListing(store, env, runId, input, startedAt);

  const filters = {
    repositories: input.repositories,
    tags: input.tags,
    excludeTags: input.excludeTags,
    includeUntagged: input.includeUntagged,
  };
  // A bad catalog record is left out of the run and reported in its notes.
  const skipped: RepositoryNote[] = [];
  assertRestoreTarget(input, env[ENV.AWS_REGION]);
  const view = input.asOf ? store.atTime(new Date(input.asOf)) : store;
  const items = await planImages(view, filters, 8, (note) => skipped.push(note));
  assertRestoreScope(items, input.target?.repositoryPrefix, env[ENV.RESTORE_REPOSITORIES] ?? env[ENV.PROTECTED_REPOSITORIES]);
  for (const note of rejectedRecordNotes(view.rejectedRecords())) skipped.push(note);
  await writeListingNotes(store, runId, skipped);

  const refs = await writeBatches(store, items, {
    runId,
    input,
    limits: { maxBytes: env[ENV.BATCH_MAX_BYTES], maxImages: env[ENV.BATCH_MAX_IMAGES] },
  });
  const batches = store.runs.batchListInBucket(runId);
  const output: ListingOutput = {
    runId,
    mode: 'restore',
    startedAt,
    bucket: batches.bucket,
    // The Map's ItemReader reads the bucket directly, so this key carries the store prefix.
    batchesKey: batches.key,
    batchCount: refs.length,
    itemCount: items.length,
    unchangedCount: 0,
  };
  log('info', 'listed images', { ...output });
  return ListingOutput.parse(output);
}

/** The store as the workflow has it: S3 (the Maps' ItemReaders read the bucket directly). */
function s3Store(env: ReturnType<typeof loadListingEnvironment>, runId: string): BackupStore {
  const store = backupStoreAt(env[ENV.STORE_URL], { runId });
  if (!store.runs.inBucket) throw new Error(`${ENV.STORE_URL} must be an s3:// URL for the workflow`);
  return store;
}

/** The listing's notes (skipped entries, settings) in runs/<run>/notes/listing.json; problems logged. */
async function writeListingNotes(store: BackupStore, runId: string, notes: RepositoryNote[]): Promise<void> {
  for (const note of notes) {
    if (note.problems?.length)
      log('warn', note.action === 'skipped' ? 'skipped' : `repository settings ${note.action}`, { runId, ...note });
  }
  if (!notes.length) return;
  try {
    await store.runs.writeNotes(runId, 'listing', notes);
  } catch (error) {
    log('warn', 'cannot write the repository notes', { runId, error });
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
