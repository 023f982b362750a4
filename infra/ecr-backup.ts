// The EcrBackup construct: a store bucket, the listing and summary Lambdas, a Fargate worker (one
// task definition for backup, one for restore, each with its own least-privilege task role), the
// state machine from state-machine/definition.ts, an EventBridge Scheduler schedule, SNS
// notifications and an alarm on failed executions.
import { CfnOutput, Duration, RemovalPolicy, Stack, Tags, TimeZone } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { STACK_NAME_TAG } from '../schema/contract.ts';
import { buildDefinition } from '../state-machine/definition.ts';
import { DEFAULT_METRICS_NAMESPACE, ENV, PRUNE_ENV } from '../schema/environment.ts';
import { ECR_PUSH_ACTIONS } from './ecr-actions.ts';
import { denyOverwrites, grantStore, type StoreAccess } from './store-access.ts';
import { acknowledge, acknowledgeIam5 } from './nag.ts';
import { createNotificationTopic } from './alarm-topic.ts';
import { grantCrossAccountRestore } from './cross-account.ts';
import { MAP_RESULTS_AREA } from '../state-machine/map-results.ts';
import { PushBackups } from './push-backups.ts';
import { RestoreDrill } from './restore-drill.ts';
import { Dashboard } from './dashboard.ts';
import { StoreReplica } from './store-replica.ts';
import {
  LIST_HANDLER_ENTRY,
  PRUNE_HANDLER_ENTRY,
  REPO_ROOT,
  SUMMARIZE_HANDLER_ENTRY,
  WORKER_CONTAINER,
  WORKER_CONTAINER_COMMAND,
} from './assets.ts';
import type { EcrBackupPrune, EcrBackupProps, ImageFormat } from './props.ts';
import { createStoreBucket } from './store-bucket.ts';
import { createWorkerNetwork } from './network.ts';
import { createLambdaFunction } from './lambda-function.ts';
import { acknowledgeWorkflowFindings } from './nag-findings.ts';

export class EcrBackup extends Construct {
  readonly bucket: s3.IBucket;
  readonly encryptionKey?: kms.IKey;
  readonly prefix: string;
  /** `s3://<bucket>/<prefix>` (a token until deploy). */
  readonly storeUrl: string;
  /** docker-archive labels the workflow may write: `archiveLabel` (default the region), then `archiveLabels`. */
  private readonly archiveLabels: string[];
  readonly vpc: ec2.IVpc;
  readonly cluster: ecs.Cluster;
  readonly backupTaskDefinition: ecs.FargateTaskDefinition;
  readonly restoreTaskDefinition: ecs.FargateTaskDefinition;
  /** The restore task's role: what a cross-account target role trusts. */
  readonly restoreTaskRole: iam.IRole;
  readonly listFunction: nodejs.NodejsFunction;
  readonly summarizeFunction: nodejs.NodejsFunction;
  /** The prune step's Lambda, when the `prune` prop is set. */
  readonly pruneFunction?: nodejs.NodejsFunction;
  readonly stateMachine: sfn.StateMachine;
  readonly topic: sns.Topic;
  readonly schedule?: scheduler.Schedule;
  /** The push-event pipeline, when the `pushBackups` prop is set. */
  readonly pushBackups?: PushBackups;
  /** The scheduled drill, when the `restoreDrill` prop is set. */
  readonly restoreDrill?: RestoreDrill;
  /** The dashboard and RPO alarm, when the `dashboard` prop is set. */
  readonly dashboard?: Dashboard;
  /** The replication to the replica bucket, when the `replica` prop is set. */
  readonly replica?: StoreReplica;

  constructor(scope: Construct, id: string, props: EcrBackupProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (props.repositories.length === 0) throw new Error(`EcrBackup ${this.node.path}: repositories: give at least one glob`);
    const tolerance = props.failureTolerancePercent ?? 0;
    if (!(tolerance >= 0 && tolerance <= 100))
      throw new Error(`EcrBackup ${this.node.path}: failureTolerancePercent must be within 0..100`);
    const concurrency = props.mapConcurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new Error(`EcrBackup ${this.node.path}: mapConcurrency must be a positive integer`);
    this.prefix = normalizePrefix(props.prefix ?? '');
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const imageFormat: ImageFormat = props.imageFormat ?? 'oci';

    // ---- Store bucket ------------------------------------------------------------------------
    const store = createStoreBucket(this, props, this.prefix);
    this.bucket = store.bucket;
    this.encryptionKey = store.encryptionKey;
    this.storeUrl = `s3://${this.bucket.bucketName}/${this.prefix}`;
    this.archiveLabels = [...new Set([props.archiveLabel ?? stack.region, ...(props.archiveLabels ?? [])])];

    // ---- Notifications -------------------------------------------------------------------------
    const { topic, topicKey } = createNotificationTopic(this, props.notificationEmail);
    this.topic = topic;

    // ---- Network ---------------------------------------------------------------------------------
    const network = createWorkerNetwork(this, props, this.bucket, retention);
    this.vpc = network.vpc;
    const { subnets, taskSecurityGroup } = network;
    // ---- Lambdas ---------------------------------------------------------------------------------
    const commonEnv = { [ENV.STORE_URL]: this.storeUrl, [ENV.IMAGE_FORMAT]: imageFormat };
    const restoreRepositories = props.restoreRepositories ?? props.repositories;
    const listingConcurrency = props.listingConcurrency ?? 4;
    this.listFunction = this.handler('ListImages', LIST_HANDLER_ENTRY, retention, Duration.minutes(10), {
      ...commonEnv,
      [ENV.PROTECTED_REPOSITORIES]: JSON.stringify(props.repositories),
      [ENV.RESTORE_REPOSITORIES]: JSON.stringify(restoreRepositories),
      [ENV.BATCH_MAX_BYTES]: String(props.batchMaxBytes ?? 10 * 1024 ** 3),
      [ENV.BATCH_MAX_IMAGES]: String(props.batchMaxImages ?? 100),
      [ENV.LISTING_SHARD_SIZE]: String(props.listingShardSize ?? 100),
      [ENV.SETTINGS_CADENCE_SECONDS]: String((props.settingsCadence ?? Duration.days(7)).toSeconds()),
      [ENV.ECR_REQUESTS_PER_SECOND]: String((props.ecrRequestsPerSecond ?? 50) / listingConcurrency),
      ...(props.archiveLabel !== undefined ? { [ENV.ARCHIVE_LABEL]: props.archiveLabel } : {}),
      [ENV.ARCHIVE_LABELS]: stack.toJsonString(this.archiveLabels),
      ...(props.archiveCompression !== undefined ? { [ENV.ARCHIVE_COMPRESSION]: props.archiveCompression } : {}),
    });
    this.summarizeFunction = this.handler('SummarizeRun', SUMMARIZE_HANDLER_ENTRY, retention, Duration.minutes(5), {
      ...commonEnv,
      [ENV.FAILURE_TOLERANCE_PERCENT]: String(tolerance),
      [ENV.TOPIC_ARN]: this.topic.topicArn,
      [ENV.METRICS_NAMESPACE]: DEFAULT_METRICS_NAMESPACE,
    });

    const protectedRepos = repositoryArns(stack, props.repositories, stack.region);
    const allReposHere = repositoryArns(stack, ['**'], stack.region);

    // Listing: read ECR metadata of the protected repositories, read the catalog, write the run's batches...
    const listRole = this.listFunction.role!;
    listRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ListRepositories', actions: ['ecr:DescribeRepositories'], resources: allReposHere }),
    );
    listRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ListImages', actions: ['ecr:DescribeImages', 'ecr:ListImages'], resources: protectedRepos }),
    );
    this.grantStore(listRole, { read: ['catalog/', 'runs/'], write: ['runs/'] });
    // ...and record every planned repository's settings (catalog/<repository>/_settings/<time>.json).
    listRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadRepositorySettings',
        actions: ['ecr:GetLifecyclePolicy', 'ecr:GetRepositoryPolicy', 'ecr:ListTagsForResource'],
        resources: protectedRepos,
      }),
    );
    listRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RecordRepositorySettings',
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${this.prefix}catalog/*/_settings/*`)],
      }),
    );
    // ...and mark repositories deleted at the source (catalog/_deleted/<repository>.json, written once),
    // unmarked when they are back.
    listRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'MarkDeletedRepositories',
        actions: ['s3:PutObject', 's3:DeleteObject'],
        resources: [this.bucket.arnForObjects(`${this.prefix}catalog/_deleted/*`)],
      }),
    );
    // ...and tombstones of tags deleted at the source (catalog/<repository>/_tags/<tag>/<time>_deleted.json).
    listRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RecordDeletedTags',
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${this.prefix}catalog/*/_tags/*_deleted.json`)],
      }),
    );
    denyOverwrites(this, listRole);

    // Summary: read the run's results, write its report, publish metrics and notifications.
    const summarizeRole = this.summarizeFunction.role!;
    this.grantStore(summarizeRole, { read: ['runs/'], write: [] });
    summarizeRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteReport',
        actions: ['s3:PutObject'],
        resources: [
          this.bucket.arnForObjects(`${this.prefix}runs/*/report.json`),
          this.bucket.arnForObjects(`${this.prefix}runs/*/report.md`),
        ],
      }),
    );
    if (this.encryptionKey) {
      summarizeRole.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'EncryptReport', actions: ['kms:GenerateDataKey'], resources: [this.encryptionKey.keyArn] }),
      );
    }
    summarizeRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'Notify', actions: ['sns:Publish'], resources: [this.topic.topicArn] }),
    );
    summarizeRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'NotifyEncrypted', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [topicKey.keyArn] }),
    );

    // ---- Optional prune step ---------------------------------------------------------------------
    if (props.prune) this.pruneFunction = this.addPrune(props.prune, retention, props.taskTimeout ?? Duration.hours(6));

    // ---- Fargate worker ------------------------------------------------------------------------
    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc: this.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const image = new ecrAssets.DockerImageAsset(this, 'WorkerImage', {
      directory: REPO_ROOT,
      file: 'Dockerfile',
      platform: ecrAssets.Platform.LINUX_AMD64,
    });
    const workerLogs = new logs.LogGroup(this, 'WorkerLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });

    const makeWorker = (mode: 'backup' | 'restore') => {
      const role = new iam.Role(this, mode === 'backup' ? 'BackupTaskRole' : 'RestoreTaskRole', {
        assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
          conditions: {
            ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
            StringEquals: { 'aws:SourceAccount': stack.account },
          },
        }),
        description: `ecr-backup ${mode} worker`,
      });
      const taskDefinition = new ecs.FargateTaskDefinition(this, mode === 'backup' ? 'BackupTask' : 'RestoreTask', {
        cpu: props.taskCpu ?? 1024,
        memoryLimitMiB: props.taskMemoryMiB ?? 4096,
        ephemeralStorageGiB: props.taskEphemeralStorageGiB ?? 50,
        runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
        taskRole: role,
      });
      const container = taskDefinition.addContainer('Worker', {
        containerName: WORKER_CONTAINER[mode],
        image: ecs.ContainerImage.fromDockerImageAsset(image),
        command: [...WORKER_CONTAINER_COMMAND],
        environment: {
          ...commonEnv,
          [ENV.AWS_REGION]: stack.region,
          // BATCH_KEY is set per task by the state machine (container override).
        },
        logging: ecs.LogDrivers.awsLogs({ logGroup: workerLogs, streamPrefix: mode }),
        essential: true,
      });
      acknowledge(
        taskDefinition,
        'AwsSolutions-ECS2',
        'The environment holds no secrets: the store URL, image format and region. The worker authenticates with its task role.',
      );
      return { role, taskDefinition, container };
    };
    const backup = makeWorker('backup');
    const restore = makeWorker('restore');
    this.backupTaskDefinition = backup.taskDefinition;
    this.restoreTaskDefinition = restore.taskDefinition;

    // Backup worker: pull from the protected repositories and write the store (their settings are
    // recorded by the listing Lambda, once per run).
    const ecrAuth = new iam.PolicyStatement({ sid: 'RegistryLogin', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] });
    backup.role.addToPrincipalPolicy(ecrAuth);
    backup.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ListRepositories', actions: ['ecr:DescribeRepositories'], resources: allReposHere }),
    );
    backup.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PullProtected',
        actions: [
          'ecr:BatchGetImage',
          'ecr:GetDownloadUrlForLayer',
          'ecr:BatchCheckLayerAvailability',
          'ecr:DescribeImages',
          'ecr:ListImages',
        ],
        resources: protectedRepos,
      }),
    );
    this.grantStore(backup.role, { read: ['blobs/', 'catalog/', 'runs/'], write: ['blobs/', 'catalog/', 'runs/'], archives: 'write' });

    // Restore worker: read the store, push into the restore repositories (created when missing, with
    // their recorded settings; a customer managed KMS key needs a key policy that lets this role use it).
    // Only this stack's region and account, only the allowed repositories (default: the protected ones).
    const restoreRepos = repositoryArns(stack, restoreRepositories, stack.region);
    restore.role.addToPrincipalPolicy(ecrAuth);
    restore.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'PushRestored',
        actions: [
          ...ECR_PUSH_ACTIONS,
          'ecr:DescribeImages',
          // Repository settings: create with tags, set the recorded policies, compare an existing repository's.
          'ecr:TagResource',
          'ecr:PutLifecyclePolicy',
          'ecr:SetRepositoryPolicy',
          'ecr:GetLifecyclePolicy',
          'ecr:GetRepositoryPolicy',
          'ecr:ListTagsForResource',
        ],
        resources: restoreRepos,
      }),
    );
    this.grantStore(restore.role, { read: ['blobs/', 'catalog/', 'runs/'], write: ['runs/'], archives: 'read' });
    grantCrossAccountRestore(restore.role, props.restoreTargetRoles ?? []);
    this.restoreTaskRole = restore.role;

    // ---- State machine -------------------------------------------------------------------------
    // Step Functions delivers logs through CloudWatch Logs vended delivery, whose resource policy has
    // a size limit that `/aws/vendedlogs/` names avoid (AWS's documented prefix for these groups).
    const sfnLogs = new logs.LogGroup(this, 'StateMachineLogs', {
      logGroupName: `/aws/vendedlogs/states/${stack.stackName}-${this.node.id}`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(
        buildDefinition(this, {
          listFunction: this.listFunction,
          summarizeFunction: this.summarizeFunction,
          ...(this.pruneFunction ? { pruneFunction: this.pruneFunction } : {}),
          cluster: this.cluster,
          backup,
          restore,
          subnets,
          securityGroups: [taskSecurityGroup],
          maxConcurrency: concurrency,
          toleratedFailurePercentage: tolerance,
          taskTimeout: props.taskTimeout ?? Duration.hours(6),
          topic: this.topic,
          mapResultsPrefix: `${this.prefix}${MAP_RESULTS_AREA}`,
          listingConcurrency,
        }),
      ),
      timeout: Duration.hours(48),
      tracingEnabled: true,
      // States' inputs and outputs stay out of the logs: they name repositories, tags and run keys.
      logs: { destination: sfnLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    // The distributed Map's ItemReader reads the run's batch list (bucket/key come from the listing
    // output, so CDK cannot derive this statement itself).
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadBatchList',
        actions: ['s3:GetObject'],
        resources: [
          this.bucket.arnForObjects(`${this.prefix}runs/*/batches.json`),
          // ...and the listing's shard list (List shards).
          this.bucket.arnForObjects(`${this.prefix}runs/*/listing/shards.json`),
        ],
      }),
    );
    // ...and its ResultWriter writes the children's outputs (not the Map's state) under runs/map-results/.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteMapResults',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [this.bucket.arnForObjects(`${this.prefix}${MAP_RESULTS_AREA}/*`)],
      }),
    );
    if (this.encryptionKey) {
      this.stateMachine.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'DecryptBatchList',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.encryptionKey.keyArn],
        }),
      );
    }
    // A listing failure (e.g. a Lambda timeout) is published before the execution fails.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'NotifyEncrypted', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [topicKey.keyArn] }),
    );

    for (const [id, metric] of [
      ['ExecutionsFailedAlarm', this.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' })],
      ['ExecutionsTimedOutAlarm', this.stateMachine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' })],
    ] as const) {
      const alarm = new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `ecr-backup: a backup or restore execution ${id === 'ExecutionsFailedAlarm' ? 'failed' : 'timed out'}`,
      });
      alarm.addAlarmAction(new cwActions.SnsAction(this.topic));
    }

    // ---- Schedule ------------------------------------------------------------------------------
    const schedule = props.schedule === undefined ? { expression: 'cron(0 3 * * ? *)', timeZone: 'UTC' } : props.schedule;
    if (schedule) {
      this.schedule = new scheduler.Schedule(this, 'Schedule', {
        description: 'ecr-backup: back up the protected repositories',
        schedule: scheduler.ScheduleExpression.expression(
          normalizeScheduleExpression(schedule.expression),
          TimeZone.of(schedule.timeZone ?? 'UTC'),
        ),
        target: new schedulerTargets.StepFunctionsStartExecution(this.stateMachine, {
          input: scheduler.ScheduleTargetInput.fromObject({}),
          retryAttempts: 3,
        }),
      });
    }

    // ---- Optional features (each in its own construct) ------------------------------------------
    if (props.pushBackups) {
      this.pushBackups = new PushBackups(this, 'PushBackups', {
        ...props.pushBackups,
        stateMachine: this.stateMachine,
        repositories: props.repositories,
        makeFunction: (id, entry, timeout, environment) => this.handler(id, entry, retention, timeout, environment),
      });
    }
    if (props.restoreDrill) {
      this.restoreDrill = new RestoreDrill(this, 'RestoreDrill', {
        ...props.restoreDrill,
        cluster: this.cluster,
        image: ecs.ContainerImage.fromDockerImageAsset(image),
        storeUrl: this.storeUrl,
        subnets,
        securityGroups: [taskSecurityGroup],
        cpu: props.taskCpu ?? 1024,
        memoryLimitMiB: props.taskMemoryMiB ?? 4096,
        ephemeralStorageGiB: props.taskEphemeralStorageGiB ?? 50,
        retention,
        topic: this.topic,
        grantStore: (role) => this.grantStore(role, { read: ['blobs/', 'catalog/', 'runs/'], write: ['runs/'], archives: 'read' }),
      });
    }
    if (props.replica) {
      if (!(this.bucket instanceof s3.Bucket) || !this.encryptionKey)
        throw new Error(`EcrBackup ${this.node.path}: replica needs the bucket this construct creates`);
      this.replica = new StoreReplica(this, 'Replica', {
        ...props.replica,
        bucket: this.bucket,
        prefix: this.prefix,
        sourceKey: this.encryptionKey,
      });
    }
    if (props.dashboard) {
      this.dashboard = new Dashboard(this, 'Dashboard', {
        ...props.dashboard,
        stateMachine: this.stateMachine,
        summarizeFunction: this.summarizeFunction,
        bucket: this.bucket,
        prefix: this.prefix,
        topic: this.topic,
        drill: Boolean(this.restoreDrill),
        alarms: this.restoreDrill ? [this.restoreDrill.alarm] : [],
        replicationMetrics: this.replica?.metrics,
      });
    }

    // ---- Outputs (for `ecr-backup run/runs` and operators): <id>StateMachineArn, <id>StoreUrl ----
    const outputPrefix = this.node.id.replace(/[^A-Za-z0-9]/g, '');
    // `ecr-backup run --stack NAME` finds the state machine by this tag, with Step Functions calls alone.
    Tags.of(this.stateMachine).add(STACK_NAME_TAG, Stack.of(this).stackName);
    new CfnOutput(this, 'StateMachineArn', {
      key: `${outputPrefix}StateMachineArn`,
      description: 'ecr-backup workflow state machine',
      value: this.stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'StoreUrl', {
      key: `${outputPrefix}StoreUrl`,
      description: 'ecr-backup store (s3://bucket/prefix)',
      value: this.storeUrl,
    });
    // For `ecr-backup doctor` and for the trust policy of a cross-account restore target role.
    new CfnOutput(this, 'BackupTaskRoleArn', {
      key: `${outputPrefix}BackupTaskRoleArn`,
      description: 'ecr-backup backup task role',
      value: backup.role.roleArn,
    });
    new CfnOutput(this, 'RestoreTaskRoleArn', {
      key: `${outputPrefix}RestoreTaskRoleArn`,
      description: 'ecr-backup restore task role (trusted by cross-account target roles)',
      value: restore.role.roleArn,
    });
    new CfnOutput(this, 'TopicArn', {
      key: `${outputPrefix}TopicArn`,
      description: 'ecr-backup notifications',
      value: this.topic.topicArn,
    });

    // ---- Acknowledged cdk-nag findings (each with its reason) ----------------------------------
    acknowledgeWorkflowFindings(this, {
      roles: {
        list: listRole,
        summarize: summarizeRole,
        backup: backup.role,
        restore: restore.role,
        backupExecution: backup.taskDefinition.executionRole!,
        restoreExecution: restore.taskDefinition.executionRole!,
      },
      stateMachine: this.stateMachine,
      functions: [
        this.listFunction,
        this.summarizeFunction,
        ...(this.pruneFunction ? [this.pruneFunction] : []),
        ...(this.pushBackups ? [this.pushBackups.function] : []),
      ],
    });
  }

  /**
   * The prune Lambda: reads blobs/ and catalog/, deletes from them (s3:DeleteObject only: no version
   * deletes, so on this versioned bucket a prune is undoable until noncurrent versions expire), reads
   * Object Lock state to leave locked objects alone, and writes its report to runs/<run>/prune.json.
   */
  private addPrune(rule: EcrBackupPrune, retention: logs.RetentionDays, taskTimeout: Duration): nodejs.NodejsFunction {
    const where = `EcrBackup ${this.node.path}: prune`;
    if (rule.keepLast === undefined && rule.keepDays === undefined) throw new Error(`${where}: set keepLast or keepDays`);
    if (rule.keepLast !== undefined && !(Number.isInteger(rule.keepLast) && rule.keepLast >= 1))
      throw new Error(`${where}: keepLast must be an integer >= 1`);
    if (rule.keepDays !== undefined && !(rule.keepDays > 0)) throw new Error(`${where}: keepDays must be > 0`);
    const fn = this.handler('PruneStore', PRUNE_HANDLER_ENTRY, retention, Duration.minutes(15), {
      [ENV.STORE_URL]: this.storeUrl,
      ...(rule.keepLast !== undefined ? { [PRUNE_ENV.KEEP_LAST]: String(rule.keepLast) } : {}),
      ...(rule.keepDays !== undefined ? { [PRUNE_ENV.KEEP_DAYS]: String(rule.keepDays) } : {}),
      // No backup task runs longer than its timeout, so no blob it is still writing is older than that.
      [PRUNE_ENV.GRACE_SECONDS]: String(taskTimeout.toSeconds()),
    });
    // Prune holds the store's listing and marks in memory (~470 bytes per blob and record, measured:
    // ~750 MB at 200,000 images): 3,008 MB leaves a ~4x margin (README, Prune at scale).
    (fn.node.defaultChild as lambda.CfnFunction).memorySize = 3008;
    const role = fn.role!;
    this.grantStore(role, { read: ['blobs/', 'catalog/'], write: [] });
    const areas = [this.bucket.arnForObjects(`${this.prefix}blobs/*`), this.bucket.arnForObjects(`${this.prefix}catalog/*`)];
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'DeletePruned', actions: ['s3:DeleteObject'], resources: areas }));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ReadObjectLock', actions: ['s3:GetObjectRetention', 's3:GetObjectLegalHold'], resources: areas }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadBucketObjectLock',
        actions: ['s3:GetBucketObjectLockConfiguration'],
        resources: [this.bucket.bucketArn],
      }),
    );
    // Killed runs' incomplete multipart uploads (blobs, archives, map results) under the store prefix.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ListUploads', actions: ['s3:ListBucketMultipartUploads'], resources: [this.bucket.bucketArn] }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'AbortAbandonedUploads',
        actions: ['s3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [this.bucket.arnForObjects(`${this.prefix}*`)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WritePruneReport',
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${this.prefix}runs/*/prune.json`)],
      }),
    );
    if (this.encryptionKey)
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'EncryptPruneReport', actions: ['kms:GenerateDataKey'], resources: [this.encryptionKey.keyArn] }),
      );
    if (this.bucket instanceof s3.Bucket) {
      const days = Duration.days(rule.noncurrentVersionDays ?? 30);
      for (const area of ['blobs', 'catalog']) {
        this.bucket.addLifecycleRule({
          id: `expire-pruned-${area}`,
          prefix: `${this.prefix}${area}/`,
          noncurrentVersionExpiration: days,
          expiredObjectDeleteMarker: true,
        });
      }
    }
    acknowledgeIam5(this, [
      {
        pattern: /^Resource::<[^>]+\.Arn>\/[^*]*(blobs|catalog|runs)\/\*.*$/,
        where: [role],
        reason:
          "The prune Lambda reads and deletes objects only in the store prefix's blobs/ and catalog/ areas (digests and tags known only at run time) and writes runs/<run>/prune.json.",
      },
      {
        pattern: /^Resource::<[^>]+\.Arn>\/[^*]*\*$/,
        where: [role],
        reason:
          'The prune Lambda aborts incomplete multipart uploads under the store prefix that got no part for the grace period (killed runs); their keys and upload ids are known only at run time.',
      },
    ]);
    return fn;
  }

  /** A Lambda bundled by the local esbuild (ESM, no Docker) with its own role and log group (also for the feature constructs). */
  handler(id: string, entry: string, retention: logs.RetentionDays, timeout: Duration, environment: Record<string, string>) {
    return createLambdaFunction(this, id, entry, retention, timeout, environment);
  }

  private grantStore(role: iam.IRole, access: StoreAccess) {
    grantStore(
      { bucket: this.bucket, prefix: this.prefix, encryptionKey: this.encryptionKey, archiveLabels: this.archiveLabels },
      role,
      access,
    );
  }
}

/** `''`, or the prefix without a leading `/` and with exactly one trailing `/`. */
function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed ? `${trimmed}/` : '';
}

/** `cron(...)`/`rate(...)`/`at(...)` pass through; a bare 6-field cron body is wrapped. */
function normalizeScheduleExpression(expression: string): string {
  const e = expression.trim();
  return /^(cron|rate|at)\(.*\)$/.test(e) ? e : `cron(${e})`;
}

/**
 * IAM ARN patterns for repository globs. IAM's `*` also crosses `/`, so `team/*` grants a superset of
 * what the glob matches (the Lambdas and worker filter by the glob itself); `**` becomes `*`.
 */
function repositoryArns(stack: Stack, globs: string[], region: string): string[] {
  const patterns = [...new Set(globs.map((g) => g.replace(/\*\*+/g, '*')))];
  return patterns.map((p) => stack.formatArn({ service: 'ecr', region, resource: 'repository', resourceName: p }));
}
