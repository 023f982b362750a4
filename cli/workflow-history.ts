// What the workflow commands read of an execution: its listing state's output (history), the run
// report in the store, and the counts in its output.
//
// Which store (for run reports): `--store`, or derived from the execution itself: the output of its
// listing state names the bucket and the batches key, which carries the store prefix.
import {
  GetExecutionHistoryCommand,
  type DescribeExecutionCommandOutput,
  type GetExecutionHistoryCommandOutput,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { ListingOutput, RunCounts, RunReport, runKeys } from '../schema/contract.ts';
import { STATE } from '../schema/workflow-states.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { NotFoundError } from '../core/store/object-store.ts';
import { openBackupStore as openStoreAt, StoreUrlError } from '../core/store/url.ts';
import { UsageError } from './endpoints.ts';

/** The output of the execution's listing state (bucket, batches key, counts), when it has one. */
export async function findListing(sfn: SFNClient, executionArn: string): Promise<ListingOutput | undefined> {
  let nextToken: string | undefined;
  // The listing is the first task: it is within the first page or two of the history.
  for (let page = 0; page < 3; page++) {
    let history: GetExecutionHistoryCommandOutput;
    try {
      history = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 100, nextToken }));
    } catch {
      return undefined;
    }
    for (const event of history.events ?? []) {
      const exited = event.stateExitedEventDetails;
      // A restore's listing output is List images'; a backup's (sharded) is Merge shards' (List images only plans).
      if ((exited?.name !== STATE.list && exited?.name !== STATE.mergeShards) || !exited.output) continue;
      try {
        const parsed = ListingOutput.safeParse((JSON.parse(exited.output) as { listing?: unknown }).listing);
        if (parsed.success) return parsed.data;
      } catch {
        // not JSON: keep looking
      }
    }
    nextToken = history.nextToken;
    if (!nextToken) return undefined;
  }
  return undefined;
}

/** `s3://bucket/prefix/` of the store a listing wrote to (its batches key carries the prefix). */
export function storeUrlOf(listing: ListingOutput | undefined): string | undefined {
  if (!listing) return undefined;
  const suffix = runKeys.batches(listing.runId);
  if (!listing.batchesKey.endsWith(suffix)) return undefined;
  return `s3://${listing.bucket}/${listing.batchesKey.slice(0, -suffix.length)}`;
}

export function openStore(url: string, region?: string): BackupStore {
  try {
    return openStoreAt(url, region ? { store: { clientOptions: { region } } } : {});
  } catch (error) {
    if (error instanceof StoreUrlError) throw new UsageError(`--store: ${error.message}`);
    throw error;
  }
}

export async function readReport(store: BackupStore, runId: string): Promise<RunReport | undefined> {
  try {
    const parsed = RunReport.safeParse(await store.runs.readReport(runId));
    return parsed.success ? parsed.data : undefined;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** The summary Lambda's output (the execution's output on success) carries the counts. */
export function countsFromOutput(execution: DescribeExecutionCommandOutput): RunCounts | undefined {
  if (!execution.output) return undefined;
  try {
    const parsed = RunCounts.safeParse((JSON.parse(execution.output) as { counts?: unknown }).counts);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
