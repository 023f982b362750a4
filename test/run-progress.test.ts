// `run --wait` progress on a backup, which runs two distributed Maps: the shard listing's, then the
// copy Map. Scripted SFN client: moto runs no map runs (ListMapRuns/DescribeMapRun) and keeps no
// execution history for them.
import { DescribeMapRunCommand, GetExecutionHistoryCommand, ListMapRunsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { afterEach, expect, it, vi } from 'vitest';
import { waitForExecution } from '../cli/workflow-progress.ts';
import { MAP_LABEL, STATE } from '../schema/workflow-states.ts';

const EXECUTION = 'arn:aws:states:us-east-1:111122223333:execution:EcrBackup:run-1';
const mapRun = (label: string) => `arn:aws:states:us-east-1:111122223333:mapRun:EcrBackup/${label}:0b1c`;
const LISTING = {
  runId: 'run-1',
  mode: 'backup',
  startedAt: '2026-11-30T00:00:00.000Z',
  bucket: 'b',
  batchesKey: 'runs/run-1/batches.json',
  batchCount: 3,
  itemCount: 40,
  unchangedCount: 0,
};

afterEach(() => vi.restoreAllMocks());

it('shows the copy Map’s batch counts, never the shard listing’s, with the listing from Merge shards (scripted SFN client: moto has no map runs)', async () => {
  let polls = 0;
  const sfn = new SFNClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  sfn.send = (async (command: unknown) => {
    if (command instanceof ListMapRunsCommand) {
      // The shard listing's Map is the newest run until the copy Map starts (third poll).
      const runs = [{ mapRunArn: mapRun(MAP_LABEL.listShards), startDate: new Date(2000) }];
      if (polls >= 3) runs.push({ mapRunArn: mapRun(MAP_LABEL.copyBatches), startDate: new Date(1000) });
      return { mapRuns: runs };
    }
    if (command instanceof DescribeMapRunCommand) {
      const copy = command.input.mapRunArn === mapRun(MAP_LABEL.copyBatches);
      return { itemCounts: copy ? { succeeded: 2, running: 1, total: 3 } : { succeeded: 57, running: 4, total: 61 } };
    }
    if (command instanceof GetExecutionHistoryCommand) {
      return {
        events: [{ stateExitedEventDetails: { name: STATE.mergeShards, output: JSON.stringify({ listing: LISTING }) } }],
      };
    }
    polls++;
    return { status: polls > 4 ? 'SUCCEEDED' : 'RUNNING', startDate: new Date() };
  }) as SFNClient['send'];
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });

  const watched = await waitForExecution(sfn, EXECUTION, { intervalMs: 0, quiet: false });

  const text = lines.join('');
  expect(watched.execution.status).toBe('SUCCEEDED');
  expect(watched.listing).toMatchObject({ batchCount: 3, itemCount: 40 });
  expect(text).toContain(`${STATE.map}: 2/3 batch(es) (40 image(s)) done, 1 running`);
  expect(text).not.toMatch(/57|61/);
});
