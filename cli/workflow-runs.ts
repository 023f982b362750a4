// `ecr-backup runs`: recent executions of the deployed workflow with their counts (from each run's
// report in the store, else from a successful execution's output).
import { DescribeExecutionCommand, ListExecutionsCommand, type ExecutionListItem } from '@aws-sdk/client-sfn';
import type { RunCounts } from '../schema/contract.ts';
import { mapLimited } from '../core/limiter.ts';
import { formatBytes, formatDuration, table } from './format.ts';
import { countsFromOutput, findListing, openStore, readReport, storeUrlOf } from './workflow-history.ts';
import { resolveStateMachine, sfnCall, type TargetOptions } from './workflow-target.ts';

export interface RunsOptions extends TargetOptions {
  max: number;
}

export async function listRuns(options: RunsOptions) {
  const explicitStore = options.store === undefined ? undefined : openStore(options.store);
  const target = await resolveStateMachine(options);
  const sfn = target.client;
  const executions: ExecutionListItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfnCall(() =>
      sfn.send(
        new ListExecutionsCommand({ stateMachineArn: target.arn, maxResults: Math.min(options.max - executions.length, 1000), nextToken }),
      ),
    );
    executions.push(...(page.executions ?? []));
    nextToken = page.nextToken;
  } while (nextToken && executions.length < options.max);
  executions.splice(options.max);

  // The store: --store, or from the listing output of one of the newest executions.
  let store = explicitStore;
  if (!store) {
    for (const e of executions.slice(0, 3)) {
      const url = storeUrlOf(await findListing(sfn, e.executionArn!));
      if (url) {
        store = openStore(url, target.region);
        break;
      }
    }
  }
  const rows = await mapLimited(executions, 4, async (e) => {
    const name = e.name!;
    let counts: RunCounts | undefined = store ? (await readReport(store, name))?.counts : undefined;
    if (!counts && e.status === 'SUCCEEDED') {
      counts = countsFromOutput(await sfnCall(() => sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn! }))));
    }
    return { name, executionArn: e.executionArn!, status: e.status!, startDate: e.startDate, stopDate: e.stopDate, counts };
  });

  if (options.json) {
    const executionsJson = rows.map((r) => ({ ...r, counts: r.counts ?? null }));
    process.stdout.write(
      `${JSON.stringify({ stateMachineArn: target.arn, store: store?.description ?? null, executions: executionsJson }, null, 2)}\n`,
    );
    return;
  }
  if (rows.length === 0) {
    process.stdout.write(`no executions of ${target.arn}\n`);
    return;
  }
  const cell = (n: number | undefined) => (n === undefined ? '' : String(n));
  process.stdout.write(
    `${table(
      ['NAME', 'STATUS', 'STARTED', 'DURATION', 'IMAGES', 'COPIED', 'UNCHANGED', 'FAILED', 'COPIED BYTES'],
      rows.map((r) => [
        r.name,
        r.status,
        r.startDate ? formatTime(r.startDate) : '',
        r.startDate && r.stopDate ? formatDuration(r.stopDate.getTime() - r.startDate.getTime()) : '',
        cell(r.counts?.images),
        cell(r.counts?.copied),
        cell(r.counts?.unchanged),
        cell(r.counts?.failed),
        r.counts ? formatBytes(r.counts.bytesCopied) : '',
      ]),
    )}\n`,
  );
  if (!store) process.stderr.write('counts of failed runs need the store: pass --store s3://bucket/prefix\n');
}

function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}
