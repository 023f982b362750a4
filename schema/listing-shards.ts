// The sharded listing's files (a backup run's listing, state-machine/definition.ts): the plan step
// splits the repositories into shards, each `List shard` invocation lists one shard and writes its
// outcome, and `Merge shards` turns the outcomes into the batches `Copy batches` reads. Only keys
// and counts travel in the state; these objects carry the data.
import { z } from 'zod';
import { DeletedTag, ExecutionInput, RepositoryNote, runKeys, WorkItem } from './contract.ts';
import { RepositorySettings } from './repository-settings.ts';

/** What DescribeRepositories already says about a repository: its settings except policies and tags. */
export const DescribedSettings = RepositorySettings.pick({
  imageTagMutability: true,
  imageTagMutabilityExclusionFilters: true,
  scanOnPush: true,
  encryption: true,
});
export type DescribedSettings = z.infer<typeof DescribedSettings>;

/** A source repository as the plan step found it. */
export const ShardRepository = z.object({
  name: z.string(),
  /** For ListTagsForResource when the settings are due. */
  arn: z.string().optional(),
  described: DescribedSettings.optional(),
});
export type ShardRepository = z.infer<typeof ShardRepository>;

/** runs/<run>/listing/shards/<n>.json: one shard's work. */
export const ListingShard = z.object({
  runId: z.string(),
  index: z.number().int().nonnegative(),
  /** The execution input as the plan step parsed it (filters, format, dry run). */
  input: ExecutionInput,
  repositories: z.array(ShardRepository),
  /** Stored repositories inside the protected globs that the source no longer has (not yet marked deleted). */
  gone: z.array(z.string()),
});
export type ListingShard = z.infer<typeof ListingShard>;

/** An element of runs/<run>/listing/shards.json, the JSON array the `List shards` Map reads. */
export const ShardRef = z.object({
  shardKey: z.string(),
  index: z.number().int().nonnegative(),
  repositories: z.number().int().nonnegative(),
});
export type ShardRef = z.infer<typeof ShardRef>;

/** runs/<run>/listing/outcomes/<n>.json: what one shard found. */
export const ShardOutcome = z.object({
  index: z.number().int().nonnegative(),
  /** New or changed images, in the planned order. */
  items: z.array(WorkItem),
  unchangedCount: z.number().int().nonnegative(),
  deleted: z.array(DeletedTag),
  notes: z.array(RepositoryNote),
  settingsRecorded: z.number().int().nonnegative(),
  /** ECR control-plane calls this shard made (DescribeImages pages and settings reads). */
  ecrCalls: z.number().int().nonnegative(),
});
export type ShardOutcome = z.infer<typeof ShardOutcome>;

/** The plan step's output (a backup's `List images`): keys and counts only. */
export const ShardedListingPlan = z.object({
  runId: z.string(),
  mode: z.literal('backup'),
  startedAt: z.string(),
  bucket: z.string(),
  /** Bucket key (with the store prefix) of the ShardRef array the Map's ItemReader reads. */
  shardsKey: z.string(),
  shardCount: z.number().int().nonnegative(),
  repositoryCount: z.number().int().nonnegative(),
  /** Stored repositories found deleted at the source (listed by their shards). */
  goneCount: z.number().int().nonnegative(),
});
export type ShardedListingPlan = z.infer<typeof ShardedListingPlan>;

/** The `List shard` event (the Map's ItemSelector). */
export const ListShardEvent = z.object({ listShard: z.object({ runId: z.string(), shardKey: z.string(), index: z.number().int() }) });
export type ListShardEvent = z.infer<typeof ListShardEvent>;

/** The `Merge shards` event: the plan step's output. */
export const MergeShardsEvent = z.object({ mergeShards: ShardedListingPlan });
export type MergeShardsEvent = z.infer<typeof MergeShardsEvent>;

/** Store-relative keys of the sharded listing's files. */
export const shardKeys = {
  list: (runId: string) => `${runKeys.dir(runId)}listing/shards.json`,
  shard: (runId: string, index: number) => `${runKeys.dir(runId)}listing/shards/${String(index).padStart(6, '0')}.json`,
  outcome: (runId: string, index: number) => `${runKeys.dir(runId)}listing/outcomes/${String(index).padStart(6, '0')}.json`,
};
