// The EcrBackup construct's props: every setting a deployment can choose, with its default.
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { z } from 'zod';
import type { ArchiveCompression, ArchiveFormat } from '../schema/contract.ts';
import type { EcrBackupDashboard } from './dashboard.ts';
import type { EcrBackupPushBackups } from './push-backups.ts';
import type { EcrBackupRestoreDrill } from './restore-drill.ts';
import type { EcrBackupReplica } from './store-replica.ts';

/** Archive format of new backups (schema ArchiveFormat). */
export type ImageFormat = z.infer<typeof ArchiveFormat>;

export interface EcrBackupSchedule {
  /** EventBridge Scheduler expression: `cron(0 3 * * ? *)`, `rate(1 day)`, or a bare cron body. */
  readonly expression: string;
  /** IANA time zone the cron expression is evaluated in. @default 'UTC' */
  readonly timeZone?: string;
}

export interface EcrBackupObjectLock {
  /** Object Lock mode: GOVERNANCE (users with s3:BypassGovernanceRetention may delete) or COMPLIANCE (no one may, not even root). */
  readonly mode: 'GOVERNANCE' | 'COMPLIANCE';
  /** Default retention applied to every object version written to the bucket. */
  readonly days: number;
}

export interface EcrBackupProps {
  /** Repository globs (`*` within a segment, `**` across) that scheduled runs back up, and that the backup roles may read. */
  readonly repositories: string[];
  /**
   * Repository globs a restore may create and push to (after its repository prefix), in this stack's
   * account and region. The listing refuses a restore input that would write elsewhere. Add e.g.
   * `'restored/**'` to restore under a prefix.
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
   * KMS key. With a new bucket: its SSE-KMS key. With an existing bucket: the key that bucket
   * encrypts with, so the roles get kms:Decrypt/GenerateDataKey on it.
   * @default a new key with rotation (new bucket)
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
   * @default none (every object stays in Standard)
   */
  readonly blobStorageClass?: BlobStorageClass;
  /** Bucket for S3 server access logs of a new store bucket. @default none (see nag acknowledgement) */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * VPC for the Fargate tasks.
   * @default a new VPC, no NAT: isolated subnets with an S3 gateway endpoint and ECR api/dkr, Logs and STS interface endpoints
   */
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
  /**
   * Archive format for new backups: `'docker-archive'` stores one tar per tag (README, Archive format). An
   * execution input's `format`, `label`, `compression` and `platform` override it per run. @default 'oci'
   */
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
  /** Listing: repositories per listing shard (one `List shard` Lambda invocation each). @default 100 */
  readonly listingShardSize?: number;
  /** Listing: shards listed at once (`List shards` MaxConcurrency). @default 4 */
  readonly listingConcurrency?: number;
  /** Listing: the account's ECR API budget (requests per second), split between the shards listed at once. @default 50 */
  readonly ecrRequestsPerSecond?: number;
  /**
   * Listing: lifecycle and repository policies and resource tags are read again when the recorded
   * settings are older than this (or what DescribeRepositories reports changed). @default 7 days
   */
  readonly settingsCadence?: Duration;
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
  /** The storage class blobs over 128 KiB move to. */
  readonly storageClass: 'INTELLIGENT_TIERING' | 'GLACIER_IR';
  /** Days after a blob's upload. */
  readonly afterDays: number;
}

export interface EcrBackupPrune {
  /** Per tag, keep the N newest records. @default none (set keepLast, keepDays or both) */
  readonly keepLast?: number;
  /** Keep records newer than D days, and the value each tag had D days ago. @default none (set keepLast, keepDays or both) */
  readonly keepDays?: number;
  /**
   * New bucket only: days after which pruned objects' noncurrent versions (the bucket is versioned,
   * so a delete leaves one) expire and their storage is freed. @default 30
   */
  readonly noncurrentVersionDays?: number;
}
