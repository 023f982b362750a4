// The state machine's state names: the ASL is built with them (state-machine/definition.ts) and the
// CLI reads execution history by them (cli/workflow-history.ts), so they are one contract.
/** State names, as they appear in the ASL (and as aws-local-stepfunctions handler keys). */
export const STATE = {
  list: 'List images',
  /** Backup runs: the listing sharded by repository (List images wrote the shards). */
  shardedListing: 'Sharded listing?',
  listShards: 'List shards',
  listShard: 'List shard',
  mergeShards: 'Merge shards',
  anythingToCopy: 'Anything to copy?',
  map: 'Copy batches',
  backupOrRestore: 'Backup or restore?',
  backup: 'Back up batch',
  restore: 'Restore batch',
  batchFailed: 'Record batch failure',
  summarize: 'Summarize run',
  notifyListingFailed: 'Notify listing failure',
  listingFailed: 'Listing failed',
  /** Only with the EcrBackup `prune` prop: */
  pruneAfterBackup: 'Prune after backup?',
  prune: 'Prune store',
  done: 'Done',
} as const;

/**
 * The distributed Maps' labels: a map run's ARN carries its Map's label (`…:mapRun:<machine>/<label>:<id>`),
 * which is how `run --wait` tells the copy Map's counts from the shard listing's.
 */
export const MAP_LABEL = { copyBatches: 'CopyBatches', listShards: 'ListShards' } as const;
