// The EcrBackup construct: a store bucket, the listing and summary Lambdas, a Fargate worker (one
// task definition for backup, one for restore, each with its own least-privilege task role), the
// state machine from state-machine/definition.ts, an EventBridge Scheduler schedule, SNS
// notifications and an alarm on failed executions.
import { Duration, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ENV } from '../schema/environment.ts';
import { grantStore, type StoreBucket } from './store-access.ts';
import { createNotificationTopic } from './alarm-topic.ts';
import type { PushBackups } from './push-backups.ts';
import type { RestoreDrill } from './restore-drill.ts';
import type { Dashboard } from './dashboard.ts';
import type { StoreReplica } from './store-replica.ts';
import type { EcrBackupProps, ImageFormat } from './props.ts';
import { createStoreBucket } from './store-bucket.ts';
import { createWorkerNetwork } from './network.ts';
import type { LambdaName } from './assets.ts';
import { createLambdaFunction } from './lambda-function.ts';
import { acknowledgeWorkflowFindings } from './nag-findings.ts';
import { createWorkflowLambdas } from './workflow-lambdas.ts';
import { createPruneFunction } from './prune-function.ts';
import { createWorkers } from './workers.ts';
import { createWorkflowStateMachine } from './workflow-state-machine.ts';
import { createBackupSchedule } from './schedule.ts';
import { addOptionalFeatures } from './optional-features.ts';
import { addWorkflowOutputs } from './outputs.ts';

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
  readonly listFunction: lambda.Function;
  readonly summarizeFunction: lambda.Function;
  /** The prune step's Lambda, when the `prune` prop is set. */
  readonly pruneFunction?: lambda.Function;
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
    const created = createStoreBucket(this, props, this.prefix);
    this.bucket = created.bucket;
    this.encryptionKey = created.encryptionKey;
    this.storeUrl = `s3://${this.bucket.bucketName}/${this.prefix}`;
    this.archiveLabels = [...new Set([props.archiveLabel ?? stack.region, ...(props.archiveLabels ?? [])])];

    // ---- Notifications -------------------------------------------------------------------------
    const { topic, topicKey } = createNotificationTopic(this, props.notificationEmail);
    this.topic = topic;

    // ---- Network ---------------------------------------------------------------------------------
    const network = createWorkerNetwork(this, props, this.bucket, retention);
    this.vpc = network.vpc;
    const { subnets, taskSecurityGroup } = network;
    const store: StoreBucket = {
      bucket: this.bucket,
      prefix: this.prefix,
      encryptionKey: this.encryptionKey,
      archiveLabels: this.archiveLabels,
    };
    const protectedRepos = repositoryArns(stack, props.repositories, stack.region);
    const allReposHere = repositoryArns(stack, ['**'], stack.region);
    const restoreRepositories = props.restoreRepositories ?? props.repositories;
    const listingConcurrency = props.listingConcurrency ?? 4;
    const taskTimeout = props.taskTimeout ?? Duration.hours(6);

    // ---- Lambdas ---------------------------------------------------------------------------------
    const commonEnv = { [ENV.STORE_URL]: this.storeUrl, [ENV.IMAGE_FORMAT]: imageFormat };
    const lambdas = createWorkflowLambdas(this, {
      props,
      store,
      retention,
      commonEnv,
      restoreRepositories,
      listingConcurrency,
      tolerance,
      topic,
      topicKey,
      protectedRepos,
      allReposHere,
    });
    this.listFunction = lambdas.listFunction;
    this.summarizeFunction = lambdas.summarizeFunction;

    // ---- Optional prune step ---------------------------------------------------------------------
    if (props.prune) this.pruneFunction = createPruneFunction(this, store, this.storeUrl, props.prune, retention, taskTimeout);

    // ---- Fargate worker ------------------------------------------------------------------------
    const { cluster, image, backup, restore } = createWorkers(this, {
      props,
      vpc: this.vpc,
      store,
      retention,
      commonEnv,
      allReposHere,
      protectedRepos,
      restoreRepos: repositoryArns(stack, restoreRepositories, stack.region),
    });
    this.cluster = cluster;
    this.backupTaskDefinition = backup.taskDefinition;
    this.restoreTaskDefinition = restore.taskDefinition;
    this.restoreTaskRole = restore.role;

    // ---- State machine -------------------------------------------------------------------------
    this.stateMachine = createWorkflowStateMachine(this, {
      definition: {
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
        taskTimeout,
        listingConcurrency,
      },
      store,
      retention,
      topic,
      topicKey,
    });

    // ---- Schedule ------------------------------------------------------------------------------
    this.schedule = createBackupSchedule(this, props.schedule, this.stateMachine);

    // ---- Optional features (each in its own construct) ------------------------------------------
    const features = addOptionalFeatures(this, {
      props,
      store,
      storeUrl: this.storeUrl,
      retention,
      stateMachine: this.stateMachine,
      summarizeFunction: this.summarizeFunction,
      cluster: this.cluster,
      image,
      subnets,
      taskSecurityGroup,
      topic,
      makeFunction: (id, name, timeout, environment) => this.handler(id, name, retention, timeout, environment),
      grantStore: (role) => grantStore(store, role, { read: ['blobs/', 'catalog/', 'runs/'], write: ['runs/'], archives: 'read' }),
    });
    this.pushBackups = features.pushBackups;
    this.restoreDrill = features.restoreDrill;
    this.replica = features.replica;
    this.dashboard = features.dashboard;

    // ---- Outputs (for `ecr-backup run/runs` and operators): <id>StateMachineArn, <id>StoreUrl ----
    addWorkflowOutputs(this, {
      stateMachine: this.stateMachine,
      storeUrl: this.storeUrl,
      backupTaskRole: backup.role,
      restoreTaskRole: restore.role,
      topic,
    });

    // ---- Acknowledged cdk-nag findings (each with its reason) ----------------------------------
    acknowledgeWorkflowFindings(this, {
      roles: {
        list: this.listFunction.role!,
        summarize: this.summarizeFunction.role!,
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

  /** A Lambda (an ESM bundle: prebuilt in the package, esbuild's here) with its own role and log group (also for the feature constructs). */
  private handler(id: string, name: LambdaName, retention: logs.RetentionDays, timeout: Duration, environment: Record<string, string>) {
    return createLambdaFunction(this, id, name, retention, timeout, environment);
  }
}

/** `''`, or the prefix without a leading `/` and with exactly one trailing `/`. */
function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed ? `${trimmed}/` : '';
}

/**
 * IAM ARN patterns for repository globs. IAM's `*` also crosses `/`, so `team/*` grants a superset of
 * what the glob matches (the Lambdas and worker filter by the glob itself); `**` becomes `*`.
 */
function repositoryArns(stack: Stack, globs: string[], region: string): string[] {
  const patterns = [...new Set(globs.map((g) => g.replace(/\*\*+/g, '*')))];
  return patterns.map((p) => stack.formatArn({ service: 'ecr', region, resource: 'repository', resourceName: p }));
}
