// Progress of a running execution for `ecr-backup run --wait`: polls it to the end, showing the
// distributed Map's item counts on a status line (redrawn on a TTY, sparse in logs).
import {
  DescribeExecutionCommand,
  DescribeMapRunCommand,
  ListMapRunsCommand,
  type DescribeExecutionCommandOutput,
  type ExecutionStatus,
  type MapRunItemCounts,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { ListingOutput } from '../schema/contract.ts';
import { MAP_LABEL, STATE } from '../schema/workflow-states.ts';
import { formatDuration } from './format.ts';
import { findListing } from './workflow-history.ts';
import { sfnCall } from './workflow-target.ts';

const TERMINAL: ReadonlySet<ExecutionStatus> = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

interface Watched {
  execution: DescribeExecutionCommandOutput;
  /** The listing state's output, when it was looked up while waiting. */
  listing?: ListingOutput;
}

/** Polls until the execution ends; meanwhile the distributed Map's item counts on a status line. */
export async function waitForExecution(
  sfn: SFNClient,
  executionArn: string,
  options: { intervalMs: number; quiet: boolean },
): Promise<Watched> {
  const status = statusLine(process.stderr, options.quiet);
  let mapRunArn: string | undefined;
  let mapRunsUnavailable = false;
  let listing: ListingOutput | undefined;
  let listingLookedUp = false;
  const onSigint = () => {
    status.clear();
    process.stderr.write(`stopped waiting; the execution continues: ${executionArn}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    for (;;) {
      const execution = await sfnCall(() => sfn.send(new DescribeExecutionCommand({ executionArn })));
      if (TERMINAL.has(execution.status!)) {
        status.clear();
        return { execution, ...(listing ? { listing } : {}) };
      }
      let counts: MapRunItemCounts | undefined;
      if (!mapRunsUnavailable) {
        try {
          // A backup also runs the shard listing's Map first: only the copy Map's run is progress.
          if (!mapRunArn) {
            const runs = (await sfn.send(new ListMapRunsCommand({ executionArn }))).mapRuns ?? [];
            mapRunArn = runs.find((run) => run.mapRunArn?.includes(`/${MAP_LABEL.copyBatches}:`))?.mapRunArn;
          }
          if (mapRunArn) counts = (await sfn.send(new DescribeMapRunCommand({ mapRunArn }))).itemCounts;
        } catch {
          // No permission for map runs, or an emulator without them: progress without item counts.
          mapRunsUnavailable = true;
        }
      }
      // Counts come only from the copy Map, which starts after the listing's last state: its output
      // is in the history by now, so one lookup is enough.
      if (counts && !listingLookedUp) {
        listingLookedUp = true;
        listing = await findListing(sfn, executionArn);
      }
      const elapsed = execution.startDate ? formatDuration(Date.now() - execution.startDate.getTime()) : '';
      const detail = counts ? `  ${mapProgress(counts, listing)}` : '';
      status.update(`${execution.status}${detail}`, `${execution.status} ${elapsed}${detail}`);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function mapProgress(c: MapRunItemCounts, listing: ListingOutput | undefined): string {
  const failed = (c.failed ?? 0) + (c.timedOut ?? 0) + (c.aborted ?? 0);
  const done = (c.succeeded ?? 0) + failed;
  const total = listing?.batchCount ?? c.total ?? 0;
  const images = listing ? ` (${listing.itemCount} image(s))` : '';
  return `${STATE.map}: ${done}/${total} batch(es)${images} done, ${c.running ?? 0} running${failed ? `, ${failed} failed` : ''}`;
}

/**
 * A redrawn line on a TTY; otherwise a line whenever the status changes (and at least once a
 * minute), so logs of long runs stay short.
 */
function statusLine(stream: NodeJS.WriteStream, quiet: boolean) {
  let lastKey: string | undefined;
  let lastPrinted = 0;
  let drawn = false;
  return {
    update(key: string, text: string) {
      if (quiet) return;
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        drawn = true;
        return;
      }
      const now = Date.now();
      if (key !== lastKey || now - lastPrinted >= 60_000) {
        stream.write(`${text}\n`);
        lastKey = key;
        lastPrinted = now;
      }
    },
    clear() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
