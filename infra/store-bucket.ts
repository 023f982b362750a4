// The store bucket: KMS-encrypted, versioned, TLS-only, no public access, owner-enforced, with
// optional Object Lock and a blob storage-class transition; or a bucket the caller brings.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledge } from './nag.ts';
import type { EcrBackupProps } from './props.ts';

export function createStoreBucket(
  scope: Construct,
  props: EcrBackupProps,
  prefix: string,
): { bucket: s3.IBucket; encryptionKey?: kms.IKey } {
  if (props.bucket) {
    if (props.objectLock) throw new Error(`EcrBackup ${scope.node.path}: objectLock can only be set on a bucket this construct creates`);
    if (props.blobStorageClass)
      throw new Error(
        `EcrBackup ${scope.node.path}: blobStorageClass can only be set on a bucket this construct creates (add the lifecycle rule to your bucket)`,
      );
    return { bucket: props.bucket, encryptionKey: props.encryptionKey ?? props.bucket.encryptionKey };
  } else {
    const key =
      props.encryptionKey ??
      new kms.Key(scope, 'StoreKey', {
        description: 'ecr-backup store bucket encryption',
        enableKeyRotation: true,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
    const runsPrefix = `${prefix}runs/`;
    const bucket = new s3.Bucket(scope, 'Store', {
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
                prefix: `${prefix}blobs/`,
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
    return { bucket, encryptionKey: key };
  }
}
