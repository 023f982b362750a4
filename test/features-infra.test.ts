// The optional infrastructure of issue 12 in the synthesized template: the scheduled restore drill
// (restoreDrill), the dashboard and the RPO alarm (dashboard), each set from the `ecrBackup` context.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesizeTemplate, type CfnTemplate } from './harness/synthesized-workflow.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import { DRILL_CONTAINER, DRILL_CONTAINER_COMMAND } from '../infra/restore-drill.ts';

const config: EcrBackupContext = {
  stackName: 'EcrBackupFeatures',
  repositories: ['team/**'],
  prefix: 'store/',
  restoreDrill: { schedule: 'cron(0 4 ? * SAT *)', sample: 'all', scratchPrefix: 'drills/' },
  dashboard: { rpoWindowHours: 30, dashboardName: 'ecr-backup-test' },
  replica: {
    bucketName: 'ecr-backup-replica',
    region: 'eu-west-1',
    account: '210987654321',
    kmsKeyArn: 'arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  },
};

let json: CfnTemplate;
let template: Template;
beforeAll(() => {
  json = synthesizeTemplate({ context: { ecrBackup: config }, nag: false, bundle: false }).template;
  template = Template.fromJSON(json as unknown as Record<string, unknown>);
});

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
const statements = () =>
  Object.values(json.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .flatMap((r) => (r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);

describe('scheduled restore drill (restoreDrill)', () => {
  it("runs the worker image's drill entry as a Fargate task on its schedule, with the sample and scratch prefix", () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Name: DRILL_CONTAINER,
          Command: [...DRILL_CONTAINER_COMMAND],
          Environment: Match.arrayWith([
            { Name: 'DRILL_SAMPLE', Value: 'all' },
            { Name: 'DRILL_SCRATCH_ROOT', Value: 'drills/' },
          ]),
        }),
      ],
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 4 ? * SAT *)',
      Target: Match.objectLike({
        EcsParameters: Match.objectLike({ LaunchType: 'FARGATE', TaskDefinitionArn: { Ref: Match.stringLikeRegexp('RestoreDrillTask') } }),
      }),
    });
  });

  it('lets the drill write and delete ECR repositories under its scratch prefix only', () => {
    const scratch = statements().find((s) => s.Sid === 'ScratchRepositories')!;
    expect(scratch.Action).toEqual(
      expect.arrayContaining(['ecr:PutImage', 'ecr:BatchDeleteImage', 'ecr:DeleteRepository', 'ecr:CreateRepository']),
    );
    expect(JSON.stringify(scratch.Resource)).toContain(':repository/drills/*');
  });

  it('alarms to the topic when a drill reports DrillPassed below 1', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DrillPassed',
      Namespace: 'EcrBackup',
      Statistic: 'Minimum',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      AlarmActions: [Match.objectLike({ Ref: Match.stringLikeRegexp('Notifications') })],
    });
  });
});

describe('dashboard and RPO alarm (dashboard)', () => {
  it('shows executions, image counts, bytes, duration, store size and dedup ratio, drills, and the age per repository', () => {
    const dashboard = Object.values(json.Resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!;
    expect(dashboard.Properties!.DashboardName).toBe('ecr-backup-test');
    const body = JSON.stringify(dashboard.Properties!.DashboardBody);
    for (const name of [
      'ExecutionsStarted',
      'ExecutionsSucceeded',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
      'ExecutionTime',
      'ImagesCopied',
      'ImagesUnchanged',
      'ImagesFailed',
      'BytesCopied',
      'BytesDeduplicated',
      'BucketSizeBytes',
      'StoreStoredBytes',
      'StoreDedupRatio',
      'DrillPassed',
      'DrillEstimatedRtoSeconds',
    ]) {
      expect(body, name).toContain(name);
    }
    expect(body).toContain(`SEARCH('{EcrBackup,Repository} MetricName=\\\\\\"LastBackupAgeSeconds\\\\\\"'`);
  });

  it('alarms when the oldest last successful backup is older than the window, or no run reported for a day', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'OldestBackupAgeSeconds',
      Namespace: 'EcrBackup',
      Statistic: 'Maximum',
      Period: 86400,
      Threshold: 30 * 3600,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'breaching',
      AlarmActions: [Match.objectLike({ Ref: Match.stringLikeRegexp('Notifications') })],
    });
  });

  it("turns on the summary Lambda's backup-age tracking and lets it write only the status file", () => {
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ TRACK_BACKUP_AGE: '1' }) } });
    const write = statements().find((s) => s.Sid === 'WriteBackupAges')!;
    expect(write.Action).toBe('s3:PutObject');
    expect(JSON.stringify(write.Resource)).toContain('/store/runs/_status/last-backups.json');
  });
});

describe('second copy of the store (replica)', () => {
  it('replicates blobs/ and catalog/ (not runs/, not deletes) to the replica bucket with its own key and Replication Time Control metrics', () => {
    const bucket = Object.values(json.Resources).find((r) => r.Type === 'AWS::S3::Bucket' && r.Properties?.ReplicationConfiguration)!;
    const replication = bucket.Properties!.ReplicationConfiguration as {
      Rules: Array<{ Filter: { Prefix: string } } & Record<string, unknown>>;
    };
    expect(replication.Rules.map((r) => r.Filter.Prefix)).toEqual(['store/blobs/', 'store/catalog/']);
    for (const rule of replication.Rules) {
      expect(rule).toMatchObject({
        Status: 'Enabled',
        DeleteMarkerReplication: { Status: 'Disabled' },
        SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
      });
      expect(rule.Destination).toMatchObject({
        Bucket: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::ecr-backup-replica']] },
        Account: '210987654321',
        AccessControlTranslation: { Owner: 'Destination' },
        EncryptionConfiguration: { ReplicaKmsKeyID: 'arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
        ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
        Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
      });
    }
  });

  it('gives the replication role only replication actions, on the two areas, and no delete replication', () => {
    const sids = new Map(
      statements()
        .filter((s) =>
          ['SourceConfiguration', 'ReadSourceVersions', 'WriteReplicas', 'DecryptSource', 'EncryptReplicas'].includes(s.Sid ?? ''),
        )
        .map((s) => [s.Sid!, s]),
    );
    expect(sids.size).toBe(5);
    expect([...(sids.get('WriteReplicas')!.Action as string[])].sort()).toEqual([
      's3:ObjectOwnerOverrideToBucketOwner',
      's3:ReplicateObject',
      's3:ReplicateTags',
    ]);
    expect(JSON.stringify(sids.get('WriteReplicas')!.Resource)).toMatch(
      /ecr-backup-replica\/store\/blobs\/\*.*ecr-backup-replica\/store\/catalog\/\*/,
    );
    expect(JSON.stringify(sids.get('ReadSourceVersions')!.Resource)).not.toContain('runs/');
    expect(sids.get('EncryptReplicas')!.Resource).toBe('arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    expect(JSON.stringify(sids.get('EncryptReplicas')!.Condition)).toContain('s3.eu-west-1.amazonaws.com');
    for (const s of statements()) expect(s.Action).not.toContain('s3:ReplicateDelete');
  });

  it('puts the replication lag on the dashboard', () => {
    const body = JSON.stringify(
      Object.values(json.Resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!.Properties!.DashboardBody,
    );
    expect(body).toContain('ReplicationLatency');
    expect(body).toContain('OperationsPendingReplication');
  });
});
