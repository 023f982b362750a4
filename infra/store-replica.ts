// A second copy of the store in another region or account (EcrBackup `replica` prop): S3 replication
// of blobs/ and catalog/ (runs/ is working data) to an existing, versioned destination bucket
// encrypted with its own KMS key, with Replication Time Control and replication metrics, so lag is
// visible (AWS/S3 ReplicationLatency, OperationsPendingReplication, BytesPendingReplication). Deletes
// are not replicated: a prune (or an attacker with the primary's credentials) cannot empty the
// replica; its own lifecycle rules decide how long it keeps objects.
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledgeIam5 } from './nag.ts';

export interface EcrBackupReplica {
  /** The destination bucket (versioning enabled), created and owned outside this stack. */
  readonly bucketName: string;
  /** Its region (another region than the stack's for a regional outage). */
  readonly region: string;
  /** Its account, when not this one: objects then become the destination account's. @default this account */
  readonly account?: string;
  /** ARN of the destination's KMS key; its key policy must let this stack's replication role Encrypt. */
  readonly kmsKeyArn: string;
  /** Storage class of the replicas. @default 'STANDARD_IA' */
  readonly storageClass?: 'STANDARD' | 'STANDARD_IA' | 'ONEZONE_IA' | 'INTELLIGENT_TIERING' | 'GLACIER_IR' | 'DEEP_ARCHIVE';
}

export interface StoreReplicaProps extends EcrBackupReplica {
  readonly bucket: s3.Bucket;
  readonly prefix: string;
  readonly sourceKey: kms.IKey;
}

export const REPLICATED_AREAS = ['blobs/', 'catalog/'] as const;

export class StoreReplica extends Construct {
  readonly role: iam.Role;
  /** Replication lag and backlog per rule, for the dashboard. */
  readonly metrics: cloudwatch.IMetric[];

  constructor(scope: Construct, id: string, props: StoreReplicaProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(props.bucketName))
      throw new Error(`EcrBackup ${this.node.path}: replica bucketName ${JSON.stringify(props.bucketName)} is not a bucket name`);
    if (!/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/.test(props.kmsKeyArn))
      throw new Error(`EcrBackup ${this.node.path}: replica kmsKeyArn must be a KMS key ARN`);
    const destinationArn = `arn:${stack.partition}:s3:::${props.bucketName}`;
    const crossAccount = props.account !== undefined && props.account !== stack.account;

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
      description: 'ecr-backup store replication',
    });
    const sourceObjects = REPLICATED_AREAS.map((a) => props.bucket.arnForObjects(`${props.prefix}${a}*`));
    const destinationObjects = REPLICATED_AREAS.map((a) => `${destinationArn}/${props.prefix}${a}*`);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SourceConfiguration',
        actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
        resources: [props.bucket.bucketArn],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadSourceVersions',
        actions: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging'],
        resources: sourceObjects,
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteReplicas',
        // No s3:ReplicateDelete: deletes stay in the primary.
        actions: ['s3:ReplicateObject', 's3:ReplicateTags', ...(crossAccount ? ['s3:ObjectOwnerOverrideToBucketOwner'] : [])],
        resources: destinationObjects,
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DecryptSource',
        actions: ['kms:Decrypt'],
        resources: [props.sourceKey.keyArn],
        conditions: {
          StringLike: {
            'kms:ViaService': `s3.${stack.region}.amazonaws.com`,
            'kms:EncryptionContext:aws:s3:arn': [props.bucket.bucketArn, `${props.bucket.bucketArn}/*`],
          },
        },
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'EncryptReplicas',
        actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
        resources: [props.kmsKeyArn],
        conditions: {
          StringLike: {
            'kms:ViaService': `s3.${props.region}.amazonaws.com`,
            'kms:EncryptionContext:aws:s3:arn': [destinationArn, `${destinationArn}/*`],
          },
        },
      }),
    );

    const ruleIds = REPLICATED_AREAS.map((a) => `replicate-${a.replace('/', '')}`);
    (props.bucket.node.defaultChild as s3.CfnBucket).replicationConfiguration = {
      role: this.role.roleArn,
      rules: REPLICATED_AREAS.map((area, i) => ({
        id: ruleIds[i],
        priority: i,
        status: 'Enabled',
        filter: { prefix: `${props.prefix}${area}` },
        deleteMarkerReplication: { status: 'Disabled' },
        sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
        destination: {
          bucket: destinationArn,
          storageClass: props.storageClass ?? 'STANDARD_IA',
          encryptionConfiguration: { replicaKmsKeyId: props.kmsKeyArn },
          ...(crossAccount ? { account: props.account, accessControlTranslation: { owner: 'Destination' } } : {}),
          // Replication Time Control: 99.99 % within 15 minutes, and the lag metrics with it.
          replicationTime: { status: 'Enabled', time: { minutes: 15 } },
          metrics: { status: 'Enabled', eventThreshold: { minutes: 15 } },
        },
      })),
    };

    this.metrics = ruleIds.flatMap((ruleId) => {
      const dimensionsMap = { SourceBucket: props.bucket.bucketName, DestinationBucket: props.bucketName, RuleId: ruleId };
      return [
        new cloudwatch.Metric({
          namespace: 'AWS/S3',
          metricName: 'ReplicationLatency',
          dimensionsMap,
          statistic: 'Maximum',
          period: Duration.minutes(5),
          label: `${ruleId} latency (s)`,
        }),
        new cloudwatch.Metric({
          namespace: 'AWS/S3',
          metricName: 'OperationsPendingReplication',
          dimensionsMap,
          statistic: 'Maximum',
          period: Duration.minutes(5),
          label: `${ruleId} pending`,
        }),
      ];
    });

    acknowledgeIam5(this, [
      {
        pattern: /^Resource::(<[^>]+\.Arn>|arn:<AWS::Partition>:s3:::[^/]+)\/[^*]*(blobs|catalog)\/\*$/,
        where: [this.role],
        reason:
          "S3 replication reads object versions of, and writes replicas into, the store prefix's blobs/ and catalog/ areas only; their keys are digests and tags.",
      },
    ]);
  }
}
