// The workflow's listing and summary Lambdas: their environment and least-privilege roles (listing
// reads ECR metadata and writes the run's plan; summary writes the report and notifies).
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { runKeys } from '../schema/contract.ts';
import { DEFAULT_METRICS_NAMESPACE, ENV } from '../schema/environment.ts';
import { createLambdaFunction } from './lambda-function.ts';
import type { EcrBackupProps } from './props.ts';
import { denyOverwrites, grantStore, type StoreBucket } from './store-access.ts';

interface WorkflowLambdasProps {
  props: EcrBackupProps;
  store: StoreBucket;
  retention: logs.RetentionDays;
  /** Environment every workflow component shares (store URL, image format). */
  commonEnv: Record<string, string>;
  restoreRepositories: string[];
  listingConcurrency: number;
  tolerance: number;
  topic: sns.Topic;
  topicKey: kms.IKey;
  /** IAM ARN patterns of the protected repositories, and of every repository in this region. */
  protectedRepos: string[];
  allReposHere: string[];
}

export function createWorkflowLambdas(
  scope: Construct,
  w: WorkflowLambdasProps,
): { listFunction: lambda.Function; summarizeFunction: lambda.Function } {
  const { props, store, retention, commonEnv, protectedRepos, allReposHere } = w;
  const { bucket, prefix } = store;
  const stack = Stack.of(scope);
  const listFunction = createLambdaFunction(scope, 'ListImages', 'list-images', retention, Duration.minutes(10), {
    ...commonEnv,
    [ENV.PROTECTED_REPOSITORIES]: JSON.stringify(props.repositories),
    [ENV.RESTORE_REPOSITORIES]: JSON.stringify(w.restoreRepositories),
    [ENV.BATCH_MAX_BYTES]: String(props.batchMaxBytes ?? 10 * 1024 ** 3),
    [ENV.BATCH_MAX_IMAGES]: String(props.batchMaxImages ?? 100),
    [ENV.LISTING_SHARD_SIZE]: String(props.listingShardSize ?? 100),
    [ENV.SETTINGS_CADENCE_SECONDS]: String((props.settingsCadence ?? Duration.days(7)).toSeconds()),
    [ENV.ECR_REQUESTS_PER_SECOND]: String((props.ecrRequestsPerSecond ?? 50) / w.listingConcurrency),
    ...(props.archiveLabel !== undefined ? { [ENV.ARCHIVE_LABEL]: props.archiveLabel } : {}),
    [ENV.ARCHIVE_LABELS]: stack.toJsonString(store.archiveLabels),
    ...(props.archiveCompression !== undefined ? { [ENV.ARCHIVE_COMPRESSION]: props.archiveCompression } : {}),
  });
  const summarizeFunction = createLambdaFunction(scope, 'SummarizeRun', 'summarize', retention, Duration.minutes(5), {
    ...commonEnv,
    [ENV.FAILURE_TOLERANCE_PERCENT]: String(w.tolerance),
    [ENV.TOPIC_ARN]: w.topic.topicArn,
    [ENV.METRICS_NAMESPACE]: DEFAULT_METRICS_NAMESPACE,
  });

  // Listing: read ECR metadata of the protected repositories, read the catalog, write the run's batches...
  const listRole = listFunction.role!;
  listRole.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'ListRepositories', actions: ['ecr:DescribeRepositories'], resources: allReposHere }),
  );
  listRole.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'ListImages', actions: ['ecr:DescribeImages', 'ecr:ListImages'], resources: protectedRepos }),
  );
  grantStore(store, listRole, { read: ['catalog/', 'runs/'], write: ['runs/'] });
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
      resources: [bucket.arnForObjects(`${prefix}catalog/*/_settings/*`)],
    }),
  );
  // ...and mark repositories deleted at the source (catalog/_deleted/<repository>.json, written once),
  // unmarked when they are back.
  listRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'MarkDeletedRepositories',
      actions: ['s3:PutObject', 's3:DeleteObject'],
      resources: [bucket.arnForObjects(`${prefix}catalog/_deleted/*`)],
    }),
  );
  // ...and tombstones of tags deleted at the source (catalog/<repository>/_tags/<tag>/<time>_deleted.json).
  listRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'RecordDeletedTags',
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects(`${prefix}catalog/*/_tags/*_deleted.json`)],
    }),
  );
  denyOverwrites(store, listRole);

  // Summary: read the run's results, write its report, publish metrics and notifications.
  const summarizeRole = summarizeFunction.role!;
  grantStore(store, summarizeRole, { read: ['runs/'], write: [] });
  summarizeRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'WriteReport',
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects(`${prefix}${runKeys.report('*')}`), bucket.arnForObjects(`${prefix}${runKeys.reportMarkdown('*')}`)],
    }),
  );
  if (store.encryptionKey) {
    summarizeRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'EncryptReport', actions: ['kms:GenerateDataKey'], resources: [store.encryptionKey.keyArn] }),
    );
  }
  summarizeRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'Notify', actions: ['sns:Publish'], resources: [w.topic.topicArn] }));
  summarizeRole.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'NotifyEncrypted', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [w.topicKey.keyArn] }),
  );
  return { listFunction, summarizeFunction };
}
