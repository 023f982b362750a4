// The EcrBackup construct: a store bucket, the listing and summary Lambdas, a Fargate worker (one
// task definition for backup, one for restore, each with its own least-privilege task role), the
// state machine from state-machine/definition.ts, an EventBridge Scheduler schedule, SNS
// notifications and an alarm on failed executions.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, Duration, RemovalPolicy, Stack, Tags, TimeZone } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { z } from 'zod';
import { STACK_NAME_TAG, type ArchiveCompression, type ArchiveFormat } from '../schema/contract.ts';
import { buildDefinition } from '../state-machine/definition.ts';
import { DEFAULT_METRICS_NAMESPACE, ENV, PRUNE_ENV } from '../schema/environment.ts';
import { ECR_PUSH_ACTIONS } from './ecr-actions.ts';
import { denyOverwrites, grantStore, type StoreAccess } from './store-access.ts';
import { acknowledge, acknowledgeIam5 } from './nag.ts';
import { allowAlarmPublishing } from './alarm-topic.ts';
import { retainVpcCustomResourceLogs } from './vpc-log-retention.ts';
import { grantCrossAccountRestore } from './cross-account.ts';
import { MAP_RESULTS_AREA } from '../state-machine/map-results.ts';
import { PushBackups, type EcrBackupPushBackups } from './push-backups.ts';
import { RestoreDrill, type EcrBackupRestoreDrill } from './restore-drill.ts';
import { Dashboard, type EcrBackupDashboard } from './dashboard.ts';
import { StoreReplica, type EcrBackupReplica } from './store-replica.ts';

/** The worker image's command (the Dockerfile's CMD): the esbuild bundle of worker/main.ts. */
export const WORKER_CONTAINER_COMMAND: readonly string[] = ['node', '/app/worker.mjs'];

/** Archive format of new backups (schema ArchiveFormat). */
export type ImageFormat = z.infer<typeof ArchiveFormat>;

/** Repository root: the Docker build context and the base of the Lambda entry points. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const LIST_HANDLER_ENTRY = path.join(REPO_ROOT, 'lambdas/list-images.ts');
export const SUMMARIZE_HANDLER_ENTRY = path.join(REPO_ROOT, 'lambdas/summarize.ts');
export const PRUNE_HANDLER_ENTRY = path.join(REPO_ROOT, 'lambdas/prune.ts');

/** Container names in the two task definitions (also how test/harness/synthesized-workflow.ts finds them in a template). */
export const WORKER_CONTAINER = { backup: 'backup-worker', restore: 'restore-worker' } as const;

export interface EcrBackupSchedule {
  /** EventBridge Scheduler expression: `cron(0 3 * * ? *)`, `rate(1 day)`, or a bare cron body. */
  readonly expression: string;
  /** IANA time zone the cron expression is evaluated in. @default 'UTC' */
  readonly timeZone?: string;
}

export interface EcrBackupObjectLock {
  readonly mode: 'GOVERNANCE' | 'COMPLIANCE';
  /** Default retention applied to every object version written to the bucket. */
  readonly days: number;
}

export interface EcrBackupProps {
  /** Repository globs (`*` within a segment, `**` across) that scheduled runs back up. */
  readonly repositories: string[];
  /**
   * Repository globs a restore may write to (after its repository prefix), in this stack's account and
   * region. The listing refuses a restore input that would write elsewhere.
   * @default the protected `repositories`
   */
  readonly restoreRepositories?: string[];
  /**
   * Roles in other accounts a restore may assume to push there (execution input `target.roleArn`).
   * Only these ARNs: the restore task role gets sts:AssumeRole on exactly them. @default none
   */
  readonly restoreTargetRoles?: string[];
  /** When to run a backup (input `{}`). `null` for no schedule. @default daily 03:00 UTC */
  readonly schedule?: EcrBackupSchedule | null;
  /** An existing bucket to store into. @default a new bucket */
  readonly bucket?: s3.IBucket;
  /** Key prefix of the store inside the bucket (`''` or ending in `/`). @default '' */
  readonly prefix?: string;
  /**
   * KMS key. With a new bucket: its SSE-KMS key (@default a new key with rotation). With an existing
   * bucket: the key that bucket encrypts with, so the roles get kms:Decrypt/GenerateDataKey on it.
   */
  readonly encryptionKey?: kms.IKey;
  /** S3 Object Lock default retention for a new bucket. @default none */
  readonly objectLock?: EcrBackupObjectLock;
  /** Days after which `runs/` (batches, per-image results, reports) expire. @default 30 */
  readonly runsRetentionDays?: number;
  /**
   * New bucket only: move blobs to a cheaper storage class after N days. Manifests are blobs too
   * (blobs/ is content-addressed), so the rule only moves objects over 128 KiB: layers and large
   * configs move, manifests (almost always far smaller) and the catalog stay in Standard. Both
   * classes read back in milliseconds, so restores are unchanged; Glacier Instant Retrieval bills
   * 90 days minimum and more per GET. See `ecr-backup stats` for the cost by storage class.
   */
  readonly blobStorageClass?: BlobStorageClass;
  /** Bucket for S3 server access logs of a new store bucket. @default none (see nag acknowledgement) */
  readonly accessLogsBucket?: s3.IBucket;
  /** VPC for the Fargate tasks. @default a new VPC with isolated subnets and VPC endpoints, no NAT */
  readonly vpc?: ec2.IVpc;
  /** Subnets for the tasks. @default private isolated subnets of a new VPC, private subnets of a given one */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** Fargate task CPU units. @default 1024 */
  readonly taskCpu?: number;
  /** Fargate task memory. @default 4096 */
  readonly taskMemoryMiB?: number;
  /** Fargate ephemeral storage (21-200 GiB; skopeo stages images there). @default 50 */
  readonly taskEphemeralStorageGiB?: number;
  /** Upper bound for one batch's task. @default 6 hours */
  readonly taskTimeout?: Duration;
  /** Fargate tasks running at once (distributed Map MaxConcurrency). @default 10 */
  readonly mapConcurrency?: number;
  /** Failed-image (and failed-batch) percentage tolerated before the run fails. @default 0 */
  readonly failureTolerancePercent?: number;
  /** Email address subscribed to the notification topic. @default none */
  readonly notificationEmail?: string;
  /** Archive format for new backups. @default 'oci' */
  readonly imageFormat?: ImageFormat;
  /** docker-archive format: first key segment, `<label>/<repository>/<tag>.tar`. @default the region */
  readonly archiveLabel?: string;
  /**
   * docker-archive format: further labels an execution input may choose (`"label"`). The backup role
   * may write, and the restore role read, `<label>/*` for `archiveLabel` and these only.
   * @default none
   */
  readonly archiveLabels?: string[];
  /** docker-archive format: compression of each tar. @default 'none' */
  readonly archiveCompression?: ArchiveCompression;
  /** Listing Lambda batch limits: compressed image bytes per Fargate task. @default 10 GiB */
  readonly batchMaxBytes?: number;
  /** Listing Lambda batch limits: images per Fargate task. @default 100 */
  readonly batchMaxImages?: number;
  /** Retention of all log groups. @default ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Removal policy of the store bucket and its key. @default RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retention as a workflow step: after every backup run, a Lambda applies this rule to the store
   * (`ecr-backup prune`). @default none (the store keeps every record and blob)
   */
  readonly prune?: EcrBackupPrune;
  /** Event-driven backups: each push to a protected repository is backed up within minutes. @default off */
  readonly pushBackups?: EcrBackupPushBackups;
  /** Scheduled restore drills into scratch ECR repositories, with an alarm when one fails. @default off */
  readonly restoreDrill?: EcrBackupRestoreDrill;
  /** A CloudWatch dashboard and the RPO alarm (per-repository backup age). @default off */
  readonly dashboard?: EcrBackupDashboard;
  /** A second copy of blobs/ and catalog/ by S3 replication (new bucket only). @default none */
  readonly replica?: EcrBackupReplica;
}

export interface BlobStorageClass {
  readonly storageClass: 'INTELLIGENT_TIERING' | 'GLACIER_IR';
  readonly afterDays: number;
}

export interface EcrBackupPrune {
  /** Per tag, keep the N newest records. */
  readonly keepLast?: number;
  /** Keep records newer than D days, and the value each tag had D days ago. */
  readonly keepDays?: number;
  /**
   * New bucket only: days after which pruned objects' noncurrent versions (the bucket is versioned,
   * so a delete leaves one) expire and their storage is freed. @default 30
   */
  readonly noncurrentVersionDays?: number;
}

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
    if (props.bucket) {
      if (props.objectLock) throw new Error(`EcrBackup ${this.node.path}: objectLock can only be set on a bucket this construct creates`);
      if (props.blobStorageClass)
        throw new Error(
          `EcrBackup ${this.node.path}: blobStorageClass can only be set on a bucket this construct creates (add the lifecycle rule to your bucket)`,
        );
      this.bucket = props.bucket;
      this.encryptionKey = props.encryptionKey ?? props.bucket.encryptionKey;
    } else {
      const key =
        props.encryptionKey ??
        new kms.Key(this, 'StoreKey', {
          description: 'ecr-backup store bucket encryption',
          enableKeyRotation: true,
          removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
        });
      const runsPrefix = `${this.prefix}runs/`;
      const bucket = new s3.Bucket(this, 'Store', {
        encryption: s3.BucketEncryption.KMS,
        encryptionKey: key,
        bucketKeyEnabled: true,
        versioned: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
        serverAccessLogsBucket: props.accessLogsBucket,
        serverAccessLogsPrefix: props.accessLogsBucket ? 'ecr-backup-store/' : undefined,
        objectLockEnabled: props.objectLock ? true : undefined,
        objectLockDefaultRetention: props.objectLock
          ? props.objectLock.mode === 'COMPLIANCE'
            ? s3.ObjectLockRetention.compliance(Duration.days(props.objectLock.days))
            : s3.ObjectLockRetention.governance(Duration.days(props.objectLock.days))
          : undefined,
        lifecycleRules: [
          {
            id: 'expire-runs',
            prefix: runsPrefix,
            expiration: Duration.days(props.runsRetentionDays ?? 30),
            noncurrentVersionExpiration: Duration.days(1),
          },
          { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
          ...(props.blobStorageClass
            ? [
                {
                  id: 'blobs-storage-class',
                  prefix: `${this.prefix}blobs/`,
                  objectSizeGreaterThan: 128 * 1024,
                  transitions: [
                    {
                      storageClass:
                        props.blobStorageClass.storageClass === 'GLACIER_IR'
                          ? s3.StorageClass.GLACIER_INSTANT_RETRIEVAL
                          : s3.StorageClass.INTELLIGENT_TIERING,
                      transitionAfter: Duration.days(props.blobStorageClass.afterDays),
                    },
                  ],
                },
              ]
            : []),
        ],
      });
      if (!props.accessLogsBucket) {
        acknowledge(
          bucket,
          'AwsSolutions-S1',
          "Server access logs are opt-in (accessLogsBucket prop): the store is written only by this stack's roles, every execution leaves a report under runs/, and object-level auditing is better served by CloudTrail S3 data events, which the account owner controls.",
        );
      }
      this.bucket = bucket;
      this.encryptionKey = key;
    }
    this.storeUrl = `s3://${this.bucket.bucketName}/${this.prefix}`;
    this.archiveLabels = [...new Set([props.archiveLabel ?? stack.region, ...(props.archiveLabels ?? [])])];

    // ---- Notifications -------------------------------------------------------------------------
    // A dedicated key: CloudWatch alarms can only publish to an encrypted topic whose key policy lets
    // cloudwatch.amazonaws.com use it, which an existing store key may not allow.
    const topicKey = new kms.Key(this, 'TopicKey', {
      description: 'ecr-backup notifications',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'], // in a key policy, "*" means this key
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    this.topic = new sns.Topic(this, 'Notifications', { displayName: 'ecr-backup', masterKey: topicKey, enforceSSL: true });
    allowAlarmPublishing(this.topic);
    if (props.notificationEmail) this.topic.addSubscription(new snsSubscriptions.EmailSubscription(props.notificationEmail));

    // ---- Network ---------------------------------------------------------------------------------
    let subnets: ec2.SubnetSelection;
    let interfaceEndpoints: ec2.InterfaceVpcEndpoint[] = [];
    if (props.vpc) {
      this.vpc = props.vpc;
      subnets = props.vpcSubnets ?? {};
    } else {
      const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
      // No NAT gateway: everything the worker talks to (ECR api + dkr, S3, CloudWatch Logs, STS) is
      // reached through VPC endpoints. Restoring into another region needs a VPC with egress.
      const vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
        flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL } },
      });
      retainVpcCustomResourceLogs(this, vpc, retention);
      const s3Endpoint = vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
      // Only the store's bucket and the bucket ECR serves layers from (a layer GET redirects there).
      s3Endpoint.addToPolicy(
        new iam.PolicyStatement({
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:AbortMultipartUpload', 's3:GetBucketLocation'],
          resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
        }),
      );
      s3Endpoint.addToPolicy(
        new iam.PolicyStatement({
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:GetObject'],
          resources: [`arn:${stack.partition}:s3:::prod-${stack.region}-starport-layer-bucket/*`],
        }),
      );
      interfaceEndpoints = [];
      for (const [name, service] of [
        ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
        ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
        ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
        ['Sts', ec2.InterfaceVpcEndpointAwsService.STS],
      ] as const) {
        interfaceEndpoints.push(vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true, open: false }));
      }
      this.vpc = vpc;
      subnets = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    }
    const taskSecurityGroup = new ec2.SecurityGroup(this, 'WorkerSecurityGroup', {
      vpc: this.vpc,
      description: 'ecr-backup Fargate worker: no inbound, HTTPS out (ECR, S3, Logs, STS)',
      allowAllOutbound: false,
    });
    taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS endpoints');

    // The endpoints accept HTTPS from the worker only.
    for (const endpoint of interfaceEndpoints) endpoint.connections.allowDefaultPortFrom(taskSecurityGroup, 'ecr-backup worker');
    // ---- Lambdas ---------------------------------------------------------------------------------
    const commonEnv = { [ENV.STORE_URL]: this.storeUrl, [ENV.IMAGE_FORMAT]: imageFormat };
    const restoreRepositories = props.restoreRepositories ?? props.repositories;
    this.listFunction = this.handler('ListImages', LIST_HANDLER_ENTRY, retention, Duration.minutes(10), {
      ...commonEnv,
      [ENV.PROTECTED_REPOSITORIES]: JSON.stringify(props.repositories),
      [ENV.RESTORE_REPOSITORIES]: JSON.stringify(restoreRepositories),
      [ENV.BATCH_MAX_BYTES]: String(props.batchMaxBytes ?? 10 * 1024 ** 3),
      [ENV.BATCH_MAX_IMAGES]: String(props.batchMaxImages ?? 100),
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
      new iam.PolicyStatement({
        sid: 'PutMetrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'], // PutMetricData has no resource type; the namespace condition scopes it
        conditions: { StringEquals: { 'cloudwatch:namespace': DEFAULT_METRICS_NAMESPACE } },
      }),
    );
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
        resources: [this.bucket.arnForObjects(`${this.prefix}runs/*/batches.json`)],
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
    acknowledgeIam5(this, [
      {
        pattern: /^Resource::\*$/,
        where: [backup.role, restore.role],
        reason: 'ecr:GetAuthorizationToken has no resource type; AWS requires "*" for it.',
      },
      {
        pattern: /^Resource::\*$/,
        where: [summarizeRole],
        reason: 'cloudwatch:PutMetricData has no resource type; the statement is limited to the EcrBackup namespace by condition.',
      },
      {
        pattern: /^Resource::arn:<AWS::Partition>:ecr:(<AWS::Region>|\*):<AWS::AccountId>:repository\/.*\*.*$/,
        where: [listRole, backup.role, restore.role],
        reason:
          "Repository ARNs come from the configured repository globs (DescribeRepositories lists this account's repositories to match them); restore targets may be created at run time under a prefix.",
      },
      {
        pattern: /^Resource::<[^>]+\.Arn>\/[^*]*(blobs|catalog|runs)\/\*.*$/,
        where: [listRole, summarizeRole, backup.role, restore.role, this.stateMachine.role],
        reason:
          "Object permissions are limited to the store prefix's blobs/, catalog/ or runs/ areas (or files in them), whose keys are digests and run ids known only at run time.",
      },
      {
        pattern: /^Resource::\*$/,
        where: [backup.taskDefinition.executionRole!, restore.taskDefinition.executionRole!],
        reason:
          'Standard ECS task execution role created by CDK: ecr:GetAuthorizationToken (to pull the worker image) has no resource type.',
      },
      {
        pattern: /^Resource::\*$/,
        where: [this.stateMachine.role],
        reason:
          'Granted by CDK for features whose APIs take no resource: X-Ray tracing and CloudWatch Logs delivery; plus ecs:DescribeTasks/StopTask for the .sync ECS integration, whose task ARNs exist only at run time.',
      },
      {
        pattern: /^Resource::<[^>]+\.Arn>\/[^*]*runs\/map-results\/\*$/,
        where: [this.stateMachine.role],
        reason:
          "The distributed Map's ResultWriter writes under runs/map-results/<map run id>/, an id Step Functions generates at run time.",
      },
      {
        pattern: /^Resource::<[^>]+\.Arn>:\*$/,
        where: [this.stateMachine.role],
        reason: 'lambda:InvokeFunction on the two workflow functions and their versions/aliases (CDK LambdaInvoke grant).',
      },
      {
        pattern: /^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:.*:\*$/,
        where: [this.stateMachine.node.findChild('DistributedMapPolicy')],
        reason:
          'The distributed Map runs, describes, stops and redrives child executions of this state machine only; their names are generated at run time.',
      },
    ]);
    for (const fn of [
      this.listFunction,
      this.summarizeFunction,
      ...(this.pruneFunction ? [this.pruneFunction] : []),
      ...(this.pushBackups ? [this.pushBackups.function] : []),
    ]) {
      acknowledge(
        fn,
        'AwsSolutions-L1',
        'Node.js 22 is deliberate: it matches the worker image (node:22) and the bundle target, and is supported by Lambda; move to 24 together with the worker image.',
      );
    }
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
    ]);
    return fn;
  }

  /** A Lambda bundled by the local esbuild (ESM, no Docker) with its own role and log group (also for the feature constructs). */
  handler(id: string, entry: string, retention: logs.RetentionDays, timeout: Duration, environment: Record<string, string>) {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention, removalPolicy: RemovalPolicy.DESTROY });
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `ecr-backup ${id} Lambda`,
    });
    const fn = new nodejs.NodejsFunction(this, id, {
      entry,
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 1024,
      timeout,
      role,
      logGroup,
      environment,
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // Some CommonJS dependencies call require() at run time; give the ESM bundle one.
        banner: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
        sourceMap: false,
        minify: false,
        forceDockerBundling: false,
        // The SDK versions tested are the ones that run: nothing is left to the runtime's copy.
        bundleAwsSDK: true,
        externalModules: [],
      },
    });
    // Logging: only its own log group (no AWSLambdaBasicExecutionRole managed policy).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'Logs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }),
    );
    return fn;
  }

  /**
   * Object-level S3 (and KMS) permissions for areas of the store prefix; listings limited to them.
   * `StringLikeIfExists`: S3 checks s3:ListBucket also for a HEAD/GET of a missing key (404 with it,
   * 403 without), and those requests carry no s3:prefix, so a plain StringLike would turn every
   * "not stored yet" into AccessDenied. Listings that name a prefix stay limited to the areas; a
   * listing with no prefix at all reveals key names (never contents) of the store bucket.
   */
  private grantStore(role: iam.IRole, access: StoreAccess) {
    grantStore(
      { bucket: this.bucket, prefix: this.prefix, encryptionKey: this.encryptionKey, archiveLabels: this.archiveLabels },
      role,
      access,
    );
  }
}

/** `''`, or the prefix without a leading `/` and with exactly one trailing `/`. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed ? `${trimmed}/` : '';
}

/** `cron(...)`/`rate(...)`/`at(...)` pass through; a bare 6-field cron body is wrapped. */
export function normalizeScheduleExpression(expression: string): string {
  const e = expression.trim();
  return /^(cron|rate|at)\(.*\)$/.test(e) ? e : `cron(${e})`;
}

/**
 * IAM ARN patterns for repository globs. IAM's `*` also crosses `/`, so `team/*` grants a superset of
 * what the glob matches (the Lambdas and worker filter by the glob itself); `**` becomes `*`.
 */
export function repositoryArns(stack: Stack, globs: string[], region: string): string[] {
  const patterns = [...new Set(globs.map((g) => g.replace(/\*\*+/g, '*')))];
  return patterns.map((p) => stack.formatArn({ service: 'ecr', region, resource: 'repository', resourceName: p }));
}
