// The sample stack: an EcrBackup configured from the `ecrBackup` context value (cdk.json, or
// `cdk synth -c ecrBackup='{"repositories":["team/**"]}'`), checked by cdk-nag's AwsSolutions pack.
import { App, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { ArchiveCompression, ArchiveFormat, ArchiveLabel } from '../schema/contract.ts';
import { REPO_ROOT } from './assets.ts';
import { EcrBackup } from './ecr-backup.ts';
import type { EcrBackupProps } from './props.ts';
import { CONTEXT_KEY, cdkJsonConfig, resolveConfig, type EcrBackupContext } from './context.ts';

export class EcrBackupStack extends Stack {
  readonly backup: EcrBackup;

  constructor(scope: Construct, id: string, config: EcrBackupContext, props?: StackProps) {
    super(scope, id, { description: 'ecr-backup: back up ECR images to S3 and restore them digest for digest', ...props });
    const encryptionKey = config.kmsKeyArn ? kms.Key.fromKeyArn(this, 'ExistingKey', config.kmsKeyArn) : undefined;
    const backupProps: EcrBackupProps = {
      repositories: config.repositories ?? ['**'],
      restoreRepositories: config.restoreRepositories,
      restoreTargetRoles: config.restoreTargetRoles,
      schedule: config.schedule,
      bucket: config.bucketName
        ? s3.Bucket.fromBucketAttributes(this, 'ExistingBucket', { bucketName: config.bucketName, encryptionKey })
        : undefined,
      prefix: config.prefix,
      encryptionKey,
      objectLock: config.objectLock,
      vpc: config.vpcId ? ec2.Vpc.fromLookup(this, 'ExistingVpc', { vpcId: config.vpcId }) : undefined,
      taskCpu: config.taskCpu,
      taskMemoryMiB: config.taskMemoryMiB,
      taskEphemeralStorageGiB: config.taskEphemeralStorageGiB,
      taskTimeout: config.taskTimeoutMinutes ? Duration.minutes(config.taskTimeoutMinutes) : undefined,
      mapConcurrency: config.mapConcurrency,
      failureTolerancePercent: config.failureTolerancePercent,
      notificationEmail: config.notificationEmail,
      imageFormat: config.imageFormat === undefined ? undefined : ArchiveFormat.parse(config.imageFormat),
      archiveLabel: config.archiveLabel === undefined ? undefined : ArchiveLabel.parse(config.archiveLabel),
      archiveLabels: config.archiveLabels?.map((label) => ArchiveLabel.parse(label)),
      archiveCompression: config.archiveCompression === undefined ? undefined : ArchiveCompression.parse(config.archiveCompression),
      runsRetentionDays: config.runsRetentionDays,
      ...(config.blobStorageClass ? { blobStorageClass: config.blobStorageClass } : {}),
      batchMaxBytes: config.batchMaxBytes,
      batchMaxImages: config.batchMaxImages,
      listingShardSize: config.listingShardSize,
      listingConcurrency: config.listingConcurrency,
      ecrRequestsPerSecond: config.ecrRequestsPerSecond,
      settingsCadence: config.settingsCadenceDays === undefined ? undefined : Duration.days(config.settingsCadenceDays),
      prune: config.prune,
      pushBackups: config.pushBackups,
      restoreDrill: config.restoreDrill,
      dashboard: config.dashboard,
      replica: config.replica,
    };
    this.backup = new EcrBackup(this, 'EcrBackup', backupProps);
  }
}

/** Builds the app as `cdk synth` does: the stack from context, cdk-nag AwsSolutions attached. */
export function createApp(options: { context?: Record<string, unknown>; outdir?: string; nag?: boolean } = {}): {
  app: App;
  stack: EcrBackupStack;
} {
  const app = new App({ context: options.context, outdir: options.outdir });
  const raw = app.node.tryGetContext(CONTEXT_KEY) as EcrBackupContext | string | undefined;
  const config = resolveConfig(raw, () => cdkJsonConfig(REPO_ROOT));
  const account = process.env.CDK_DEFAULT_ACCOUNT;
  const region = process.env.CDK_DEFAULT_REGION;
  const stack = new EcrBackupStack(app, config.stackName ?? 'EcrBackup', config, {
    env: account && region ? { account, region } : undefined,
  });
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
