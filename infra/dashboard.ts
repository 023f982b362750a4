// The CloudWatch dashboard and the RPO alarm (EcrBackup `dashboard` prop). Metrics: Step Functions'
// own (executions, duration), the summary Lambda's EcrBackup metrics (ImagesCopied, ImagesUnchanged,
// ImagesFailed, BytesCopied, BytesDeduplicated), S3's daily bucket size, the drill's (DrillPassed,
// RTO estimate, StoreStoredBytes, StoreDedupRatio) and the per-repository backup age the summary
// publishes when this construct turns it on (lambdas/backup-age.ts).
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { DRILL_METRICS } from '../schema/drill.ts';
import { runKeys } from '../schema/contract.ts';
import { BACKUP_AGE_METRICS, DEFAULT_METRICS_NAMESPACE, TRACK_BACKUP_AGE_ENV } from '../schema/environment.ts';

export interface EcrBackupDashboard {
  /** The RPO alarm fires when any protected repository has had no successful backup for longer. @default 26 hours (a daily schedule plus margin) */
  readonly rpoWindowHours?: number;
  /** Dashboard name. @default `<stack name>-ecr-backup` */
  readonly dashboardName?: string;
}

export interface DashboardProps extends EcrBackupDashboard {
  readonly stateMachine: sfn.StateMachine;
  readonly summarizeFunction: lambda.Function;
  readonly bucket: s3.IBucket;
  readonly prefix: string;
  readonly topic: sns.ITopic;
  /** Whether a scheduled drill publishes its metrics. */
  readonly drill: boolean;
  /** More alarms for the status widget (the drill's). */
  readonly alarms?: cloudwatch.IAlarm[];
  /** Replication lag and backlog of the replica (StoreReplica.metrics). */
  readonly replicationMetrics?: cloudwatch.IMetric[];
}

const metric = (metricName: string, statistic: string, period: Duration, dimensionsMap?: Record<string, string>) =>
  new cloudwatch.Metric({
    namespace: DEFAULT_METRICS_NAMESPACE,
    metricName,
    statistic,
    period,
    ...(dimensionsMap ? { dimensionsMap } : {}),
  });

export class Dashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly rpoAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const hours = props.rpoWindowHours ?? 26;
    if (!(hours > 0)) throw new Error(`EcrBackup ${this.node.path}: rpoWindowHours must be > 0`);

    // The summary keeps runs/_status/last-backups.json and publishes the ages from it.
    props.summarizeFunction.addEnvironment(TRACK_BACKUP_AGE_ENV, '1');
    props.summarizeFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteBackupAges',
        actions: ['s3:PutObject'],
        resources: [props.bucket.arnForObjects(`${props.prefix}${runKeys.lastBackups}`)],
      }),
    );

    const hour = Duration.hours(1);
    const day = Duration.days(1);
    const backup = { Mode: 'backup' };
    const sm = props.stateMachine;
    const oldest = metric(BACKUP_AGE_METRICS.oldest, 'Maximum', day);

    // Data arrive once per backup run: a day without any is itself a breach (nothing ran at all).
    this.rpoAlarm = new cloudwatch.Alarm(this, 'RpoAlarm', {
      metric: oldest,
      threshold: hours * 3600,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: `ecr-backup RPO: a protected repository has had no successful backup for more than ${hours} h (or no backup run reported for a day)`,
    });
    this.rpoAlarm.addAlarmAction(new cwActions.SnsAction(props.topic));

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName ?? `${Stack.of(this).stackName}-ecr-backup`,
      defaultInterval: Duration.days(14),
    });
    const graph = (title: string, left: cloudwatch.IMetric[], options: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, ...options });
    this.dashboard.addWidgets(
      graph('Executions', [
        sm.metricStarted({ period: hour, statistic: 'Sum' }),
        sm.metricSucceeded({ period: hour, statistic: 'Sum' }),
        sm.metricFailed({ period: hour, statistic: 'Sum' }),
        sm.metricTimedOut({ period: hour, statistic: 'Sum' }),
        sm.metricAborted({ period: hour, statistic: 'Sum' }),
      ]),
      graph('Images per backup run', [
        metric('ImagesCopied', 'Sum', hour, backup),
        metric('ImagesUnchanged', 'Sum', hour, backup),
        metric('ImagesFailed', 'Sum', hour, backup),
      ]),
      graph('Bytes copied and deduplicated', [
        metric('BytesCopied', 'Sum', hour, backup),
        metric('BytesDeduplicated', 'Sum', hour, backup),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Run duration (ms)', [
        sm.metric('ExecutionTime', { period: hour, statistic: 'Maximum' }),
        sm.metric('ExecutionTime', { period: hour, statistic: 'Average' }),
      ]),
      graph(
        'Store size',
        [
          new cloudwatch.Metric({
            namespace: 'AWS/S3',
            metricName: 'BucketSizeBytes',
            dimensionsMap: { BucketName: props.bucket.bucketName, StorageType: 'StandardStorage' },
            statistic: 'Average',
            period: day,
            label: 'bucket (S3, daily)',
          }),
          metric(DRILL_METRICS.storedBytes, 'Maximum', day),
        ],
        { right: [metric(DRILL_METRICS.dedupRatio, 'Maximum', day)], rightYAxis: { min: 0, label: 'dedup ratio' } },
      ),
      graph('Restore drills', [metric(DRILL_METRICS.passed, 'Minimum', day), metric(DRILL_METRICS.imagesFailed, 'Maximum', day)], {
        right: [metric(DRILL_METRICS.rtoSeconds, 'Maximum', day), metric(DRILL_METRICS.throughput, 'Average', day)],
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Age of the last successful backup, per protected repository (s)',
        width: 16,
        height: 8,
        left: [
          new cloudwatch.MathExpression({
            expression: `SEARCH('{${DEFAULT_METRICS_NAMESPACE},Repository} MetricName="${BACKUP_AGE_METRICS.perRepository}"', 'Maximum', 3600)`,
            label: '',
            period: hour,
          }),
        ],
        leftAnnotations: [{ value: hours * 3600, label: `RPO window (${hours} h)`, color: '#d62728' }],
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 8, height: 8, alarms: [this.rpoAlarm, ...(props.alarms ?? [])] }),
    );
    if (props.replicationMetrics?.length) {
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Replica: replication lag (s) and pending operations',
          width: 24,
          height: 6,
          left: props.replicationMetrics,
        }),
      );
    }
    if (!props.drill) {
      // Without scheduled drills the drill widget stays empty; say why instead of leaving a blank graph.
      this.dashboard.addWidgets(
        new cloudwatch.TextWidget({
          markdown: 'Restore drills are off (EcrBackup `restoreDrill` prop); run `ecr-backup drill` by hand.',
          width: 24,
          height: 2,
        }),
      );
    }
  }
}
