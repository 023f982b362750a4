// The optional features, each in its own construct, wired to the workflow: push-triggered backups,
// the scheduled restore drill, the store replica and the dashboard.
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { Dashboard } from './dashboard.ts';
import type { EcrBackupProps } from './props.ts';
import { PushBackups, type PushBackupsProps } from './push-backups.ts';
import { RestoreDrill } from './restore-drill.ts';
import type { StoreBucket } from './store-access.ts';
import { StoreReplica } from './store-replica.ts';

interface OptionalFeaturesProps {
  props: EcrBackupProps;
  store: StoreBucket;
  storeUrl: string;
  retention: logs.RetentionDays;
  stateMachine: sfn.StateMachine;
  summarizeFunction: lambda.Function;
  cluster: ecs.Cluster;
  image: ecrAssets.DockerImageAsset;
  subnets: ec2.SubnetSelection;
  taskSecurityGroup: ec2.ISecurityGroup;
  topic: sns.Topic;
  makeFunction: PushBackupsProps['makeFunction'];
  grantStore: (role: iam.IRole) => void;
}

export function addOptionalFeatures(
  scope: Construct,
  f: OptionalFeaturesProps,
): { pushBackups?: PushBackups; restoreDrill?: RestoreDrill; replica?: StoreReplica; dashboard?: Dashboard } {
  const { props, store } = f;
  let pushBackups: PushBackups | undefined;
  let restoreDrill: RestoreDrill | undefined;
  let replica: StoreReplica | undefined;
  let dashboard: Dashboard | undefined;
  if (props.pushBackups) {
    pushBackups = new PushBackups(scope, 'PushBackups', {
      ...props.pushBackups,
      stateMachine: f.stateMachine,
      repositories: props.repositories,
      makeFunction: f.makeFunction,
    });
  }
  if (props.restoreDrill) {
    restoreDrill = new RestoreDrill(scope, 'RestoreDrill', {
      ...props.restoreDrill,
      cluster: f.cluster,
      image: ecs.ContainerImage.fromDockerImageAsset(f.image),
      storeUrl: f.storeUrl,
      subnets: f.subnets,
      securityGroups: [f.taskSecurityGroup],
      cpu: props.taskCpu ?? 1024,
      memoryLimitMiB: props.taskMemoryMiB ?? 4096,
      ephemeralStorageGiB: props.taskEphemeralStorageGiB ?? 50,
      retention: f.retention,
      topic: f.topic,
      grantStore: f.grantStore,
    });
  }
  if (props.replica) {
    if (!(store.bucket instanceof s3.Bucket) || !store.encryptionKey)
      throw new Error(`EcrBackup ${scope.node.path}: replica needs the bucket this construct creates`);
    replica = new StoreReplica(scope, 'Replica', {
      ...props.replica,
      bucket: store.bucket,
      prefix: store.prefix,
      sourceKey: store.encryptionKey,
    });
  }
  if (props.dashboard) {
    dashboard = new Dashboard(scope, 'Dashboard', {
      ...props.dashboard,
      stateMachine: f.stateMachine,
      summarizeFunction: f.summarizeFunction,
      bucket: store.bucket,
      prefix: store.prefix,
      topic: f.topic,
      drill: Boolean(restoreDrill),
      alarms: restoreDrill ? [restoreDrill.alarm] : [],
      replicationMetrics: replica?.metrics,
    });
  }
  return { pushBackups, restoreDrill, replica, dashboard };
}
