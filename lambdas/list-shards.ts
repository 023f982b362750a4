// The listing Lambda's sharded backup (core/engine/sharded-listing.ts): the plan step (`List images`
// in backup mode), one shard (`List shard`, inside the `List shards` Map) and the merge (`Merge
// shards`). The three share the function and its role: each reads ECR metadata and the catalog the
// same way the unsharded listing did, and the merge only reads and writes runs/.
import { ExecutionInput, InvalidInputError, ListingOutput } from '../schema/contract.ts';
import { ENV, type loadListingEnvironment } from '../schema/environment.ts';
import { ShardedListingPlan, type ListShardEvent, type MergeShardsEvent } from '../schema/listing-shards.ts';
import { resolveArchiveSettings } from '../core/archive/settings.ts';
import { listShard, planShards, readShardOutcomes } from '../core/engine/sharded-listing.ts';
import { writeBatches } from '../core/engine/write-batches.ts';
import { EcrEndpoint } from '../core/registry/ecr.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { log } from '../core/log.ts';
import { perContainer } from './runtime.ts';

type ListingEnvironment = ReturnType<typeof loadListingEnvironment>;

/** The source ECR registry per container (its client and rate limiter outlive an invocation); `total()` counts its API calls. */
const ecrAt = perContainer((key) => {
  const [region, registryUrl, ratePerSecond] = JSON.parse(key) as [string | undefined, string | undefined, number];
  const source = new EcrEndpoint({ region, registryUrl, throttle: { ratePerSecond } });
  let calls = 0;
  source.client.middlewareStack.add(
    (next) => (args) => {
      calls++;
      return next(args);
    },
    { step: 'initialize', name: 'countEcrCalls' },
  );
  return { source, total: () => calls };
});

/** The source ECR registry, rate-limited to this invocation's share of the account's ECR budget; `calls()` counts this invocation's API calls. */
function ecrSource(env: ListingEnvironment): { source: EcrEndpoint; calls: () => number } {
  const ecr = ecrAt(JSON.stringify([env[ENV.AWS_REGION], env[ENV.ECR_REGISTRY_URL], env[ENV.ECR_REQUESTS_PER_SECOND]]));
  const before = ecr.total();
  return { source: ecr.source, calls: () => ecr.total() - before };
}

/** The stored form of a backup (docker-archive settings resolved once, so every shard and batch agrees). */
function backupFormat(input: ExecutionInput, env: ListingEnvironment) {
  const format = input.format ?? env[ENV.IMAGE_FORMAT];
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
  return { format, ...(archive ? { archive } : {}) };
}

/** The task roles may write and read archives under the stack's labels only: another label is refused up front. */
function assertArchiveLabel(label: string, allowed: readonly string[] | undefined): void {
  if (allowed && !allowed.includes(label)) {
    throw new InvalidInputError(
      `invalid execution input: label ${label} is not one of the stack's archive labels (${allowed.join(', ')}); add it to the archiveLabels prop`,
    );
  }
}

/** `List images` for a backup: the shards, and the plan (keys and counts) as the state's listing. */
export async function planBackupListing(
  store: BackupStore,
  env: ListingEnvironment,
  runId: string,
  input: ExecutionInput,
  startedAt: string,
): Promise<ShardedListingPlan> {
  backupFormat(input, env); // a bad archive setting fails here, before any shard runs
  const { source, calls } = ecrSource(env);
  const plan = await planShards({
    source,
    store,
    runId,
    input,
    within: env[ENV.PROTECTED_REPOSITORIES],
    shardSize: env[ENV.LISTING_SHARD_SIZE],
  });
  const shards = store.runs.shardListInBucket(runId);
  const output: ShardedListingPlan = {
    runId,
    mode: 'backup',
    startedAt,
    bucket: shards.bucket,
    // The Map's ItemReader reads the bucket directly, so this key carries the store prefix.
    shardsKey: shards.key,
    shardCount: plan.refs.length,
    repositoryCount: plan.repositoryCount,
    goneCount: plan.goneCount,
  };
  log('info', 'planned the listing', { ...output, ecrCalls: calls() });
  return ShardedListingPlan.parse(output);
}

/** `List shard`: one shard's listing; returns counts only (the outcome is in S3). */
export async function listOneShard(store: BackupStore, env: ListingEnvironment, event: ListShardEvent) {
  const shard = await store.runs.readShard(event.listShard.shardKey);
  const { source, calls } = ecrSource(env);
  const started = Date.now();
  const outcome = await listShard({
    source,
    store,
    shard,
    ...backupFormat(shard.input, env),
    settingsCadenceMs: env[ENV.SETTINGS_CADENCE_SECONDS] * 1000,
    ecrCalls: calls,
  });
  const summary = {
    index: shard.index,
    repositories: shard.repositories.length,
    gone: shard.gone.length,
    items: outcome.items.length,
    unchanged: outcome.unchangedCount,
    deleted: outcome.deleted.length,
    ecrCalls: outcome.ecrCalls,
    durationMs: Date.now() - started,
  };
  log('info', 'listed a shard', { runId: shard.runId, ...summary });
  return summary;
}

/** `Merge shards`: the shards' outcomes become the run's batches, deleted tags and notes; the output is the usual ListingOutput. */
export async function mergeListing(store: BackupStore, env: ListingEnvironment, event: MergeShardsEvent): Promise<ListingOutput> {
  const plan = event.mergeShards;
  const refs = await store.runs.readShardList(plan.runId);
  // Every shard carries the parsed input; with no shard there is nothing to copy and nothing to batch.
  const input = refs.length ? (await store.runs.readShard(refs[0]!.shardKey)).input : ExecutionInput.parse({});
  const merged = await readShardOutcomes(store, plan.runId, refs);
  const batchRefs = await writeBatches(store, merged.items, {
    runId: plan.runId,
    input,
    limits: { maxBytes: env[ENV.BATCH_MAX_BYTES], maxImages: env[ENV.BATCH_MAX_IMAGES] },
    ...backupFormat(input, env),
  });
  const dryRun = input.dryRun === true;
  // The summary puts these in the run report; a lost file costs the report its list (the tombstones stay).
  if (!dryRun && merged.deleted.length)
    await store.runs
      .writeDeleted(plan.runId, merged.deleted)
      .catch((error: unknown) => log('warn', 'cannot write the deleted tags', { runId: plan.runId, error }));
  if (merged.notes.length)
    await store.runs
      .writeNotes(plan.runId, 'listing', merged.notes)
      .catch((error: unknown) => log('warn', 'cannot write the repository notes', { runId: plan.runId, error }));
  const batches = store.runs.batchListInBucket(plan.runId);
  const output: ListingOutput = {
    runId: plan.runId,
    mode: 'backup',
    startedAt: plan.startedAt,
    bucket: batches.bucket,
    batchesKey: batches.key,
    batchCount: batchRefs.length,
    itemCount: merged.items.length,
    unchangedCount: merged.unchangedCount,
    ...(!dryRun ? { settingsRecorded: merged.settingsRecorded, deletedCount: merged.deleted.length } : {}),
  };
  log('info', 'listed images', { ...output, shards: refs.length, ecrCalls: merged.ecrCalls });
  return ListingOutput.parse(output);
}
