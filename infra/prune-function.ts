// The optional prune step's Lambda: its retention rule checks, environment, least-privilege role and
// the lifecycle rules that expire pruned (noncurrent) versions.
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { runKeys } from '../schema/contract.ts';
import { ENV, PRUNE_ENV } from '../schema/environment.ts';
import { createLambdaFunction } from './lambda-function.ts';
import { acknowledgeIam5 } from './nag.ts';
import type { EcrBackupPrune } from './props.ts';
import { retentionRuleProblem } from '../schema/retention.ts';
import { grantStore, type StoreBucket } from './store-access.ts';

/**
 * The prune Lambda: reads blobs/ and catalog/, deletes from them (s3:DeleteObject only: no version
 * deletes, so on this versioned bucket a prune is undoable until noncurrent versions expire), reads
 * Object Lock state to leave locked objects alone, and writes its report to runs/<run>/prune.json.
 */
export function createPruneFunction(
  scope: Construct,
  store: StoreBucket,
  storeUrl: string,
  rule: EcrBackupPrune,
  retention: logs.RetentionDays,
  taskTimeout: Duration,
): lambda.Function {
  const { bucket, prefix, encryptionKey } = store;
  const where = `EcrBackup ${scope.node.path}: prune`;
  const problem = retentionRuleProblem(rule);
  if (problem) throw new Error(`${where}: ${problem}`);
  const fn = createLambdaFunction(scope, 'PruneStore', 'prune', retention, Duration.minutes(15), {
    [ENV.STORE_URL]: storeUrl,
    ...(rule.keepLast !== undefined ? { [PRUNE_ENV.KEEP_LAST]: String(rule.keepLast) } : {}),
    ...(rule.keepDays !== undefined ? { [PRUNE_ENV.KEEP_DAYS]: String(rule.keepDays) } : {}),
    // No backup task runs longer than its timeout, so no blob it is still writing is older than that.
    [PRUNE_ENV.GRACE_SECONDS]: String(taskTimeout.toSeconds()),
  });
  // Prune holds the store's listing and marks in memory (~470 bytes per blob and record, measured:
  // ~750 MB at 200,000 images): 3,008 MB leaves a ~4x margin (README, Prune at scale).
  (fn.node.defaultChild as lambda.CfnFunction).memorySize = 3008;
  const role = fn.role!;
  grantStore(store, role, { read: ['blobs/', 'catalog/'], write: [] });
  const areas = [bucket.arnForObjects(`${prefix}blobs/*`), bucket.arnForObjects(`${prefix}catalog/*`)];
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'DeletePruned', actions: ['s3:DeleteObject'], resources: areas }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'ReadObjectLock', actions: ['s3:GetObjectRetention', 's3:GetObjectLegalHold'], resources: areas }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadBucketObjectLock',
      actions: ['s3:GetBucketObjectLockConfiguration'],
      resources: [bucket.bucketArn],
    }),
  );
  // Killed runs' incomplete multipart uploads (blobs, archives, map results) under the store prefix.
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'ListUploads', actions: ['s3:ListBucketMultipartUploads'], resources: [bucket.bucketArn] }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'AbortAbandonedUploads',
      actions: ['s3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
      resources: [bucket.arnForObjects(`${prefix}*`)],
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'WritePruneReport',
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects(`${prefix}${runKeys.prune('*')}`)],
    }),
  );
  if (encryptionKey)
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'EncryptPruneReport', actions: ['kms:GenerateDataKey'], resources: [encryptionKey.keyArn] }),
    );
  if (bucket instanceof s3.Bucket) {
    const days = Duration.days(rule.noncurrentVersionDays ?? 30);
    for (const area of ['blobs', 'catalog']) {
      bucket.addLifecycleRule({
        id: `expire-pruned-${area}`,
        prefix: `${prefix}${area}/`,
        noncurrentVersionExpiration: days,
        expiredObjectDeleteMarker: true,
      });
    }
  }
  acknowledgeIam5(scope, [
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
