// The run report: the same shape whether the run was the CLI or the Step Functions workflow.
import { RunReport, summarize, type ImageResult } from '../../schema/contract.ts';

export function buildReport(runId: string, mode: RunReport['mode'], startedAt: Date, results: readonly ImageResult[]): RunReport {
  return {
    runId,
    mode,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    counts: summarize(results),
    failures: results.filter((r) => r.status === 'failed'),
    results: [...results],
  };
}

/** A run id that sorts by time and is safe as a store key component. */
export function newRunId(origin: string): string {
  const stamp = new Date().toISOString().replace(/[-:.]/g, '');
  return `${origin}-${stamp}-${Math.random().toString(36).slice(2, 8)}`;
}
