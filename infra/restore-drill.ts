// Scheduled restore drills (EcrBackup `restoreDrill` prop): an EventBridge Scheduler schedule runs a
// Fargate task with the worker image's drill entry (worker/drill-main.ts, the same drill as
// `ecr-backup drill`), which restores a sample into scratch ECR repositories under a prefix, checks
// every digest, deletes them, writes runs/<drill>/drill.json and publishes DrillPassed; an alarm
// notifies the topic when a drill fails.
import { Duration, RemovalPolicy, Stack, TimeZone } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { RestoreTarget } from '../schema/contract.ts';
import { DEFAULT_SCRATCH_ROOT, DRILL_ENV, DRILL_METRICS } from '../schema/drill.ts';
import { DEFAULT_METRICS_NAMESPACE, ENV } from '../schema/environment.ts';
import { acknowledge, acknowledgeIam5 } from './nag.ts';
import { ECR_PUSH_ACTIONS } from './ecr-actions.ts';

/** The worker image's drill command (scripts/build.ts bundles worker/drill-main.ts as drill.mjs). */
export const DRILL_CONTAINER_COMMAND: readonly string[] = ['node', '/app/drill.mjs'];
export const DRILL_CONTAINER = 'restore-drill';

export interface EcrBackupRestoreDrill {
  /** EventBridge Scheduler expression. @default weekly, Sunday 05:00 UTC */
  readonly schedule?: string;
  /** Images restored per drill (a random sample of the current tags), or 'all'. @default 10 */
  readonly sample?: number | 'all';
  /** Scratch repositories are `<scratchPrefix><drill id>/<repository>`; the drill role may touch only these. @default 'ecr-backup-drill/' */
  readonly scratchPrefix?: string;
}

export interface RestoreDrillProps extends EcrBackupRestoreDrill {
  readonly cluster: ecs.ICluster;
  readonly image: ecs.ContainerImage;
  readonly storeUrl: string;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
  readonly cpu: number;
  readonly memoryLimitMiB: number;
  readonly ephemeralStorageGiB: number;
  readonly retention: logs.RetentionDays;
  readonly topic: sns.ITopic;
  /** Grants the task role read of the store and write of runs/ (EcrBackup's store grant). */
  readonly grantStore: (role: iam.IRole) => void;
}

export class RestoreDrill extends Construct {
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly schedule: scheduler.Schedule;
  readonly alarm: cloudwatch.Alarm;
  /** DrillPassed (1 passed, 0 failed) per drill. */
  readonly passedMetric: cloudwatch.Metric;

  constructor(scope: Construct, id: string, props: RestoreDrillProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const scratch = props.scratchPrefix ?? DEFAULT_SCRATCH_ROOT;
    const sample = props.sample ?? 10;
    if (!RestoreTarget.shape.repositoryPrefix.safeParse(scratch).success || !scratch.endsWith('/')) {
      throw new Error(`EcrBackup ${this.node.path}: scratchPrefix must be a repository prefix ending in / (e.g. ecr-backup-drill/)`);
    }
    if (sample !== 'all' && !(Number.isInteger(sample) && sample >= 1))
      throw new Error(`EcrBackup ${this.node.path}: sample must be a positive integer or 'all'`);

    const role = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
      description: 'ecr-backup restore drill',
    });
    props.grantStore(role);
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'RegistryLogin', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ScratchRepositories',
        actions: [...ECR_PUSH_ACTIONS, 'ecr:BatchDeleteImage', 'ecr:DeleteRepository'],
        resources: [stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: `${scratch}*` })],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PutDrillMetrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'], // PutMetricData has no resource type; the namespace condition scopes it
        conditions: { StringEquals: { 'cloudwatch:namespace': DEFAULT_METRICS_NAMESPACE } },
      }),
    );

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryLimitMiB,
      ephemeralStorageGiB: props.ephemeralStorageGiB,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      taskRole: role,
    });
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.retention, removalPolicy: RemovalPolicy.DESTROY });
    this.taskDefinition.addContainer('Drill', {
      containerName: DRILL_CONTAINER,
      image: props.image,
      command: [...DRILL_CONTAINER_COMMAND],
      environment: {
        [ENV.STORE_URL]: props.storeUrl,
        [ENV.AWS_REGION]: stack.region,
        [ENV.METRICS_NAMESPACE]: DEFAULT_METRICS_NAMESPACE,
        [DRILL_ENV.SAMPLE]: String(sample),
        [DRILL_ENV.SCRATCH_ROOT]: scratch,
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'drill' }),
      essential: true,
    });
    acknowledge(
      this.taskDefinition,
      'AwsSolutions-ECS2',
      'The environment holds no secrets: the store URL, region, sample size and scratch prefix. The task authenticates with its task role.',
    );

    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'ecr-backup: restore drill',
      schedule: scheduler.ScheduleExpression.expression(props.schedule ?? 'cron(0 5 ? * SUN *)', TimeZone.of('UTC')),
      target: new schedulerTargets.EcsRunFargateTask(props.cluster, {
        taskDefinition: this.taskDefinition,
        vpcSubnets: props.subnets,
        securityGroups: props.securityGroups,
        retryAttempts: 2,
      }),
    });

    this.passedMetric = new cloudwatch.Metric({
      namespace: DEFAULT_METRICS_NAMESPACE,
      metricName: DRILL_METRICS.passed,
      statistic: 'Minimum',
      period: Duration.days(1),
    });
    this.alarm = new cloudwatch.Alarm(this, 'FailedAlarm', {
      metric: this.passedMetric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription:
        'ecr-backup: a restore drill failed (a digest mismatch, a failed restore or scratch images left behind); see runs/<drill>/drill.json',
    });
    this.alarm.addAlarmAction(new cwActions.SnsAction(props.topic));

    acknowledgeIam5(this, [
      {
        pattern: /^Resource::\*$/,
        where: [role],
        reason:
          'ecr:GetAuthorizationToken has no resource type; cloudwatch:PutMetricData has none either and is limited to the EcrBackup namespace by condition.',
      },
      {
        pattern: /^Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository\/.*\*$/,
        where: [role],
        reason:
          'The drill creates, fills and deletes scratch repositories under its prefix only; their names carry the drill id, known at run time.',
      },
      {
        pattern: /^Resource::<[^>]+\.Arn>\/[^*]*(blobs|catalog|runs)\/\*.*$/,
        where: [role],
        reason:
          "The drill reads the store prefix's blobs/ and catalog/ (digests and tags known at run time) and writes its report under runs/.",
      },
      {
        pattern: /^Resource::\*$/,
        where: [this.taskDefinition.executionRole!],
        reason:
          'Standard ECS task execution role created by CDK: ecr:GetAuthorizationToken (to pull the worker image) has no resource type.',
      },
    ]);
  }
}
