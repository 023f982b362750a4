// The run's work as batch files: items grouped by bytes and count (batching.ts), each batch written
// to runs/<run>/batches/<n>.json and the list of references to runs/<run>/batches.json, which the
// workflow's `Copy batches` Map reads. The one writer for the listing (restore) and the merge of a
// sharded backup listing.
import type { BatchRef, ExecutionInput, WorkBatch, WorkItem } from '../../schema/contract.ts';
import type { ArchiveSettings } from '../archive/settings.ts';
import { mapLimited } from '../limiter.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { batchItems, type BatchLimits } from './batching.ts';

export interface BatchOptions {
  runId: string;
  input: ExecutionInput;
  limits: BatchLimits;
  /** Backup: the stored form, and the docker-archive settings every batch agrees on. */
  format?: WorkBatch['format'];
  archive?: ArchiveSettings;
}

export async function writeBatches(store: BackupStore, items: readonly WorkItem[], options: BatchOptions): Promise<BatchRef[]> {
  const { runId, input, format, archive } = options;
  const refs: BatchRef[] = await mapLimited(batchItems(items, options.limits), 16, async (batchItemsOfOne, index) => {
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
    const batchKey = await store.runs.writeBatch(batch);
    return { batchKey, index, items: batchItemsOfOne.length, bytes: batchItemsOfOne.reduce((n, i) => n + (i.sizeBytes ?? 0), 0) };
  });
  await store.runs.writeBatchList(runId, refs);
  return refs;
}
