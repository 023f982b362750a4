// The Fargate worker: the cluster, the worker image, one task definition per mode (backup, restore),
// each with its own least-privilege task role.
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ENV } from '../schema/environment.ts';
import { deployableCode, WORKER_CONTAINER, WORKER_CONTAINER_COMMAND } from './assets.ts';
import { grantCrossAccountRestore } from './cross-account.ts';
import { ECR_PUSH_ACTIONS } from './ecr-actions.ts';
import { acknowledge } from './nag.ts';
import type { EcrBackupProps } from './props.ts';
import { grantStore, type StoreBucket } from './store-access.ts';

interface Worker {
  role: iam.Role;
  taskDefinition: ecs.FargateTaskDefinition;
  container: ecs.ContainerDefinition;
}

interface WorkersProps {
  props: EcrBackupProps;
  vpc: ec2.IVpc;
  store: StoreBucket;
  retention: logs.RetentionDays;
  commonEnv: Record<string, string>;
  /** IAM ARN patterns: every repository in this region, the protected ones, the restore targets. */
  allReposHere: string[];
  protectedRepos: string[];
  restoreRepos: string[];
}

export function createWorkers(
  scope: Construct,
  w: WorkersProps,
): { cluster: ecs.Cluster; image: ecrAssets.DockerImageAsset; backup: Worker; restore: Worker } {
  const { props, store } = w;
  const stack = Stack.of(scope);
  const cluster = new ecs.Cluster(scope, 'Cluster', { vpc: w.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
  const image = new ecrAssets.DockerImageAsset(scope, 'WorkerImage', {
    directory: deployableCode().workerImageContext,
    file: 'Dockerfile',
    platform: ecrAssets.Platform.LINUX_AMD64,
  });
  const workerLogs = new logs.LogGroup(scope, 'WorkerLogs', { retention: w.retention, removalPolicy: RemovalPolicy.DESTROY });

  const makeWorker = (mode: 'backup' | 'restore'): Worker => {
    const role = new iam.Role(scope, mode === 'backup' ? 'BackupTaskRole' : 'RestoreTaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
      description: `ecr-backup ${mode} worker`,
    });
    const taskDefinition = new ecs.FargateTaskDefinition(scope, mode === 'backup' ? 'BackupTask' : 'RestoreTask', {
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
        ...w.commonEnv,
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

  // Backup worker: pull from the protected repositories and write the store (their settings are
  // recorded by the listing Lambda, once per run).
  const ecrAuth = new iam.PolicyStatement({ sid: 'RegistryLogin', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] });
  backup.role.addToPrincipalPolicy(ecrAuth);
  backup.role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'ListRepositories', actions: ['ecr:DescribeRepositories'], resources: w.allReposHere }),
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
      resources: w.protectedRepos,
    }),
  );
  grantStore(store, backup.role, { read: ['blobs/', 'catalog/', 'runs/'], write: ['blobs/', 'catalog/', 'runs/'], archives: 'write' });

  // Restore worker: read the store, push into the restore repositories (created when missing, with
  // their recorded settings; a customer managed KMS key needs a key policy that lets this role use it).
  // Only this stack's region and account, only the allowed repositories (default: the protected ones).
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
      resources: w.restoreRepos,
    }),
  );
  grantStore(store, restore.role, { read: ['blobs/', 'catalog/', 'runs/'], write: ['runs/'], archives: 'read' });
  grantCrossAccountRestore(restore.role, props.restoreTargetRoles ?? []);
  return { cluster, image, backup, restore };
}
