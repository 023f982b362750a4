// The `ecrBackup` configuration as `cdk synth/deploy` sees it. `-c ecrBackup='{...}'` arrives as a
// string and, for the CDK CLI, replaces cdk.json's whole object; here it is merged over cdk.json's
// object instead, so `-c ecrBackup='{"notificationEmail":"ops@example.com"}'` changes that one
// setting and keeps the prefix, tolerance and schedule of cdk.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EcrBackupDashboard } from './dashboard.ts';
import type { EcrBackupPushBackups } from './push-backups.ts';
import type { EcrBackupRestoreDrill } from './restore-drill.ts';
import type { EcrBackupReplica } from './store-replica.ts';

/** The JSON shape of the `ecrBackup` context value. */
export interface EcrBackupContext {
  stackName?: string;
  repositories?: string[];
  restoreRepositories?: string[];
  /** Role ARNs in other accounts a restore may assume (input `target.roleArn`). */
  restoreTargetRoles?: string[];
  /** `null` disables the schedule. */
  schedule?: { expression: string; timeZone?: string } | null;
  /** An existing bucket's name; omitted: a new bucket. */
  bucketName?: string;
  prefix?: string;
  /** An existing KMS key's ARN; omitted: a new key. */
  kmsKeyArn?: string;
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number };
  /** An existing VPC (looked up: needs AWS credentials at synth time); omitted: a new VPC. */
  vpcId?: string;
  taskCpu?: number;
  taskMemoryMiB?: number;
  taskEphemeralStorageGiB?: number;
  taskTimeoutMinutes?: number;
  mapConcurrency?: number;
  failureTolerancePercent?: number;
  notificationEmail?: string;
  imageFormat?: string;
  archiveLabel?: string;
  /** Further docker-archive labels an execution input may choose. */
  archiveLabels?: string[];
  archiveCompression?: string;
  runsRetentionDays?: number;
  /** Move blobs over 128 KiB to this storage class after N days (manifests and catalog stay Standard). */
  blobStorageClass?: { storageClass: 'INTELLIGENT_TIERING' | 'GLACIER_IR'; afterDays: number };
  /** Listing: repositories per shard, shards at once, the ECR API budget (requests/s), settings cadence in days. */
  listingShardSize?: number;
  listingConcurrency?: number;
  ecrRequestsPerSecond?: number;
  settingsCadenceDays?: number;
  batchMaxBytes?: number;
  batchMaxImages?: number;
  /** Prune the store after every backup run: `{keepLast?, keepDays?, noncurrentVersionDays?}`. */
  prune?: { keepLast?: number; keepDays?: number; noncurrentVersionDays?: number };
  /** Back up each push within minutes: `{batchWindowSeconds?, batchSize?, maxRunningExecutions?}` (`{}`: defaults). */
  pushBackups?: EcrBackupPushBackups;
  /** Scheduled restore drills: `{schedule?, sample?, scratchPrefix?}` (`{}`: weekly, 10 images). */
  restoreDrill?: EcrBackupRestoreDrill;
  /** CloudWatch dashboard and RPO alarm: `{rpoWindowHours?, dashboardName?}` (`{}`: 26 h). */
  dashboard?: EcrBackupDashboard;
  /** Replicate blobs/ and catalog/: `{bucketName, region, account?, kmsKeyArn, storageClass?}`. */
  replica?: EcrBackupReplica;
}

export const CONTEXT_KEY = 'ecrBackup';

/** cdk.json's `context.ecrBackup` object in `dir` ({} when there is none). */
export function cdkJsonConfig(dir: string): EcrBackupContext {
  const file = path.join(dir, 'cdk.json');
  if (!fs.existsSync(file)) return {};
  const context = (JSON.parse(fs.readFileSync(file, 'utf8')) as { context?: Record<string, unknown> }).context ?? {};
  const value = context[CONTEXT_KEY];
  return value && typeof value === 'object' ? (value as EcrBackupContext) : {};
}

/** An object is taken as is (an App built in code); a string (the `-c` flag) is merged over `base`. */
export function resolveConfig(raw: EcrBackupContext | string | undefined, base: () => EcrBackupContext): EcrBackupContext {
  if (typeof raw !== 'string') return raw ?? {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(
      `-c ${CONTEXT_KEY}: not JSON (${(error as Error).message}); quote it: -c ${CONTEXT_KEY}='{"repositories":["team/**"]}'`,
    );
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`-c ${CONTEXT_KEY}: expected a JSON object`);
  return { ...base(), ...(parsed as EcrBackupContext) };
}
