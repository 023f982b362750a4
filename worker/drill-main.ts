// Fargate entrypoint of the scheduled restore drill (EcrBackup `restoreDrill` prop): the same drill
// as `ecr-backup drill`, into a scratch prefix of this account's ECR, then its result as metrics
// (the drill alarm watches DrillPassed). Exits 1 when the drill failed or could not run.
import { CloudWatchClient, PutMetricDataCommand, StandardUnit } from '@aws-sdk/client-cloudwatch';
import { z } from 'zod';
import { describeIssues } from '../schema/contract.ts';
import { DEFAULT_SCRATCH_ROOT, DRILL_ENV, DRILL_METRICS, type DrillReport } from '../schema/drill.ts';
import { DEFAULT_METRICS_NAMESPACE, ENV } from '../schema/environment.ts';
import { runDrill } from '../core/drill/drill.ts';
import { EcrEndpoint } from '../core/registry/ecr.ts';
import { openBackupStore } from '../core/store/url.ts';
import { log } from '../core/log.ts';

const DrillEnvironment = z.object({
  [ENV.STORE_URL]: z.string().min(1),
  [ENV.AWS_REGION]: z.string().min(1).optional(),
  [ENV.ECR_REGISTRY_URL]: z.string().url().optional(),
  [ENV.METRICS_NAMESPACE]: z.string().default(DEFAULT_METRICS_NAMESPACE),
  [DRILL_ENV.SAMPLE]: z.union([z.literal('all'), z.coerce.number().int().positive()]).default(10),
  [DRILL_ENV.SCRATCH_ROOT]: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._/-]*\/$/, 'must be a repository prefix ending in /')
    .default(DEFAULT_SCRATCH_ROOT),
});

async function publishDrillMetrics(namespace: string, report: DrillReport, client = new CloudWatchClient({})): Promise<void> {
  const metric = (MetricName: string, Value: number, Unit: StandardUnit) => ({ MetricName, Value, Unit });
  await client.send(
    new PutMetricDataCommand({
      Namespace: namespace,
      MetricData: [
        metric(DRILL_METRICS.passed, report.ok ? 1 : 0, StandardUnit.Count),
        metric(DRILL_METRICS.imagesFailed, report.failed, StandardUnit.Count),
        metric(DRILL_METRICS.throughput, report.throughputBytesPerSecond, StandardUnit.Bytes_Second),
        metric(DRILL_METRICS.storedBytes, report.storeStats.storedBytes, StandardUnit.Bytes),
        ...(report.storeStats.dedupRatio !== null
          ? [metric(DRILL_METRICS.dedupRatio, report.storeStats.dedupRatio, StandardUnit.None)]
          : []),
        ...(report.rto.estimatedSeconds !== null
          ? [metric(DRILL_METRICS.rtoSeconds, report.rto.estimatedSeconds, StandardUnit.Seconds)]
          : []),
      ],
    }),
  );
}

async function main(): Promise<void> {
  const parsed = DrillEnvironment.safeParse(process.env);
  if (!parsed.success) throw new Error(`the drill task is misconfigured: ${describeIssues(parsed.error)}`);
  const env = parsed.data;
  const registry = new EcrEndpoint({ region: env[ENV.AWS_REGION], registryUrl: env[ENV.ECR_REGISTRY_URL] });
  const report = await runDrill({
    store: openBackupStore(env[ENV.STORE_URL]),
    registry,
    sample: env[DRILL_ENV.SAMPLE],
    scratchRoot: env[DRILL_ENV.SCRATCH_ROOT],
  });
  log(report.ok ? 'info' : 'error', report.ok ? 'drill passed' : 'drill failed', {
    ...report,
    images: report.images.filter((i) => i.status === 'failed'),
  });
  await publishDrillMetrics(env[ENV.METRICS_NAMESPACE], report);
  if (!report.ok) process.exitCode = 1;
}

main().catch((error: unknown) => {
  log('error', 'drill could not run', { error });
  process.exitCode = 1;
});
