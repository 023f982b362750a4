// The CDK stack, synthesized once in-process with cdk.json's context (the ecrBackup sample
// configuration replaced by a test configuration with distinctive values).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../infra/assets.ts';
import { concreteAsl, synthesizeTemplate, workerLaunchForRunTask, workerTasks, type CfnTemplate } from './harness/synthesized-workflow.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import type { EcrBackupStack } from '../infra/stack.ts';
import { STATE } from '../schema/workflow-states.ts';
import { STACK_NAME_TAG } from '../schema/contract.ts';

const require = createRequire(import.meta.url);
const aslValidator = require('asl-validator') as (
  definition: unknown,
  options?: { checkArn?: boolean; checkPaths?: boolean },
) => { isValid: boolean; errors: unknown[]; errorsText: (separator?: string) => string };

const config: EcrBackupContext = {
  stackName: 'EcrBackupTest',
  repositories: ['team-a/**', 'shared/base'],
  schedule: { expression: 'cron(30 2 ? * MON-FRI *)', timeZone: 'Europe/Berlin' },
  prefix: 'backups/ecr',
  objectLock: { mode: 'GOVERNANCE', days: 35 },
  mapConcurrency: 7,
  failureTolerancePercent: 12,
  taskCpu: 2048,
  taskMemoryMiB: 8192,
  notificationEmail: 'ops@example.com',
  imageFormat: 'docker-archive',
  archiveLabel: 'singapore',
  archiveCompression: 'zstd',
  runsRetentionDays: 14,
  blobStorageClass: { storageClass: 'GLACIER_IR', afterDays: 45 },
  pushBackups: {},
  restoreDrill: { sample: 5 },
  dashboard: {},
  replica: {
    bucketName: 'ecr-backup-replica',
    region: 'eu-west-1',
    kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  },
};

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, unknown>> };
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

let app: App;
let stack: EcrBackupStack;
let template: Template;
let json: CfnTemplate;
let asl: { States: Record<string, Record<string, any>> };

beforeAll(() => {
  const synth = synthesizeTemplate({ context: { ecrBackup: config } });
  app = synth.app;
  stack = synth.stack;
  json = synth.template;
  template = Template.fromJSON(json as unknown as Record<string, unknown>);
  asl = concreteAsl(json) as typeof asl;
});

/** Every statement of the identity policies attached to a role. */
function statementsOf(role: IRole): Statement[] {
  const logicalId = stack.resolve((role.node.defaultChild as CfnRole).logicalId) as string;
  const out: Statement[] = [];
  for (const r of Object.values(json.Resources)) {
    if (r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties?.Roles ?? []).includes(`"${logicalId}"`)) {
      out.push(...((r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement ?? []));
    }
  }
  const role_ = json.Resources[logicalId]!;
  for (const p of (role_.Properties?.Policies ?? []) as Array<{ PolicyDocument: { Statement: Statement[] } }>)
    out.push(...p.PolicyDocument.Statement);
  return out;
}
const actionsOfRole = (role: IRole) =>
  new Set(
    statementsOf(role)
      .filter((s) => s.Effect === 'Allow')
      .flatMap(actionsOf),
  );

const ECR_PUSH = ['ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage', 'ecr:CreateRepository'];

describe('store bucket', () => {
  it('is KMS-encrypted with a bucket key, versioned, private, with Object Lock', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() }, BucketKeyEnabled: true },
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 35 } } },
    });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('denies requests without TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('expires runs/ under the prefix', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'backups/ecr/runs/', ExpirationInDays: 14, Status: 'Enabled' })]),
      },
    });
  });
});

describe('Lambdas', () => {
  it('run on nodejs22.x as ESM bundles with the store and tolerance in their environment', () => {
    const fns = template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { STORE_URL: Match.anyValue() } } },
    });
    expect(Object.keys(fns)).toHaveLength(2);
    for (const fn of Object.values(fns)) expect(fn.Properties.Runtime).toBe('nodejs22.x');
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Environment: { Variables: { FAILURE_TOLERANCE_PERCENT: '12', METRICS_NAMESPACE: 'EcrBackup', TOPIC_ARN: Match.anyValue() } },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: {
          PROTECTED_REPOSITORIES: JSON.stringify(config.repositories),
          IMAGE_FORMAT: 'docker-archive',
          ARCHIVE_LABEL: 'singapore',
          ARCHIVE_COMPRESSION: 'zstd',
        },
      },
    });
    const bundles = fs
      .readdirSync(app.outdir)
      .filter((d) => d.startsWith('asset.') && fs.existsSync(path.join(app.outdir, d, 'index.mjs')));
    expect(bundles.length).toBeGreaterThanOrEqual(2);
  });
});

describe('IAM', () => {
  it('gives the listing Lambda ECR read only, no push', () => {
    const actions = actionsOfRole(stack.backup.listFunction.role!);
    expect(actions).toContain('ecr:DescribeImages');
    expect(actions).toContain('ecr:DescribeRepositories');
    for (const a of ECR_PUSH) expect(actions).not.toContain(a);
    expect(actions).not.toContain('ecr:GetDownloadUrlForLayer');
  });

  it('leaves repository settings to the listing Lambda: the backup task cannot read policies', () => {
    const actions = actionsOfRole(stack.backup.backupTaskDefinition.taskRole);
    for (const a of ['ecr:GetLifecyclePolicy', 'ecr:GetRepositoryPolicy', 'ecr:ListTagsForResource']) expect(actions).not.toContain(a);
  });

  it('moves only blobs over 128 KiB (layers, not manifests) to the chosen storage class, and nothing under catalog/', () => {
    const bucket = Object.values(json.Resources).find((r) => r.Type === 'AWS::S3::Bucket' && (r.Properties as any)?.ObjectLockEnabled)!;
    const rules = (bucket.Properties as any).LifecycleConfiguration.Rules as any[];
    const moving = rules.filter((r) => r.Transitions);
    expect(moving).toEqual([
      expect.objectContaining({
        Prefix: 'backups/ecr/blobs/',
        ObjectSizeGreaterThan: 131072,
        Transitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 45 }],
      }),
    ]);
  });

  it("lets the listing Lambda read the protected repositories' settings and write only settings records, tombstones and deleted-repository markers to catalog/", () => {
    const statements = statementsOf(stack.backup.listFunction.role!);
    const settings = statements.find((s) => actionsOf(s).includes('ecr:GetLifecyclePolicy'))!;
    expect(actionsOf(settings).sort()).toEqual(['ecr:GetLifecyclePolicy', 'ecr:GetRepositoryPolicy', 'ecr:ListTagsForResource']);
    const resources = JSON.stringify(stack.resolve(settings.Resource));
    expect(resources).toContain(':repository/team-a/*');
    expect(resources).toContain(':repository/shared/base');
    // Allow statements only: the write-once Deny (blobs/, catalog/) grants nothing.
    const writes = statements
      .filter((s) => s.Effect !== 'Deny' && actionsOf(s).includes('s3:PutObject'))
      .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]));
    const written = writes.map((r) => JSON.stringify(stack.resolve(r)));
    expect(written.some((r) => r.includes('/backups/ecr/catalog/*/_settings/*'))).toBe(true);
    expect(written.some((r) => r.includes('/backups/ecr/catalog/*/_tags/*_deleted.json'))).toBe(true);
    for (const r of written)
      expect(r).toMatch(
        /\/backups\/ecr\/(runs\/\*|catalog\/\*\/_settings\/\*|catalog\/\*\/_tags\/\*_deleted\.json|catalog\/_deleted\/\*)"/,
      );
    // It deletes nothing but the markers of repositories that came back at the source.
    const deletes = statements.filter((s) => actionsOf(s).includes('s3:DeleteObject'));
    expect(deletes.map((s) => JSON.stringify(stack.resolve(s.Resource)))).toEqual([
      expect.stringMatching(/\/backups\/ecr\/catalog\/_deleted\/\*"\]\]}$/),
    ]);
  });

  it('lets the backup task pull the protected repositories but never push', () => {
    const role = stack.backup.backupTaskDefinition.taskRole;
    const statements = statementsOf(role);
    const actions = actionsOfRole(role);
    for (const a of ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:GetAuthorizationToken']) expect(actions).toContain(a);
    for (const a of ECR_PUSH) expect(actions).not.toContain(a);
    const pull = statements.find((s) => actionsOf(s).includes('ecr:BatchGetImage'))!;
    const resources = JSON.stringify(stack.resolve(pull.Resource));
    expect(resources).toContain(':repository/team-a/*');
    expect(resources).toContain(':repository/shared/base');
    // ecr:GetAuthorizationToken is the only action on "*".
    for (const s of statements) if (JSON.stringify(s.Resource) === '"*"') expect(actionsOf(s)).toEqual(['ecr:GetAuthorizationToken']);
  });

  it('lets the restore task push, through its own role', () => {
    const actions = actionsOfRole(stack.backup.restoreTaskDefinition.taskRole);
    for (const a of ECR_PUSH) expect(actions).toContain(a);
    expect(stack.backup.restoreTaskDefinition.taskRole).not.toBe(stack.backup.backupTaskDefinition.taskRole);
    // The restore task reads the store and writes only results under runs/.
    const writes = statementsOf(stack.backup.restoreTaskDefinition.taskRole).filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(JSON.stringify(writes.map((s) => s.Resource))).not.toMatch(/blobs|catalog/);
    // Only the protected repositories (restoreRepositories' default), in the stack's own region.
    const push = statementsOf(stack.backup.restoreTaskDefinition.taskRole).find((s) => actionsOf(s).includes('ecr:PutImage'))!;
    const resources = JSON.stringify(push.Resource);
    expect(resources).toContain('repository/team-a/*');
    expect(resources).toContain('repository/shared/base');
    expect(resources).not.toMatch(/repository\/\*"/);
    expect(resources).not.toMatch(/:ecr:\*:/);
    expect(resources).toContain('AWS::Region');
  });

  it("limits the S3 gateway endpoint to the store bucket and ECR's layer bucket", () => {
    const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint')).filter((r) => JSON.stringify(r).includes('.s3'));
    expect(endpoints).toHaveLength(1);
    const policy = JSON.stringify((endpoints[0] as { Properties: { PolicyDocument: unknown } }).Properties.PolicyDocument);
    expect(policy).toContain('starport-layer-bucket/*');
    expect(policy).not.toContain('"Resource":"*"');
    expect(policy).not.toContain('s3:DeleteObject');
  });

  it('limits the summary Lambda to its namespace and topic', () => {
    const statements = statementsOf(stack.backup.summarizeFunction.role!);
    const metrics = statements.find((s) => actionsOf(s).includes('cloudwatch:PutMetricData'))!;
    expect(metrics.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': 'EcrBackup' } });
    const publish = statements.find((s) => actionsOf(s).includes('sns:Publish'))!;
    expect(publish.Resource).toEqual({ Ref: stack.resolve((stack.backup.topic.node.defaultChild as CfnRole).logicalId) });
    const writes = statements.filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(JSON.stringify(writes.map((s) => s.Resource))).toContain('/backups/ecr/runs/*/report.json');
  });

  it('has no full wildcard action on anything, ECR or S3', () => {
    const forbidden = new Set(['*', 'ecr:*', 's3:*']);
    for (const [id, r] of Object.entries(json.Resources)) {
      const docs: Array<{ Statement: Statement[] }> = [];
      if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') docs.push(r.Properties!.PolicyDocument as any);
      if (r.Type === 'AWS::IAM::Role') for (const p of (r.Properties?.Policies ?? []) as any[]) docs.push(p.PolicyDocument);
      for (const d of docs)
        for (const s of d.Statement)
          if (s.Effect === 'Allow') for (const a of actionsOf(s)) expect(forbidden.has(a), `${id}: ${a}`).toBe(false);
    }
  });
});

describe('schedule', () => {
  it('starts a backup with input {} on the configured cron and time zone', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 2 ? * MON-FRI *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      Target: { Arn: Match.anyValue(), Input: '{}', RoleArn: Match.anyValue() },
    });
  });
});

describe('state machine', () => {
  it('carries the ecr-backup:stack-name tag that `ecr-backup run --stack` looks for', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      Tags: Match.arrayWith([{ Key: STACK_NAME_TAG, Value: stack.stackName }]),
    });
  });

  it('has the documented states', () => {
    expect(Object.keys(asl.States).sort()).toEqual(
      [
        STATE.anythingToCopy,
        STATE.map,
        STATE.list,
        STATE.shardedListing,
        STATE.listShards,
        STATE.mergeShards,
        STATE.summarize,
        STATE.notifyListingFailed,
        STATE.listingFailed,
      ].sort(),
    );
    expect((asl as any).StartAt).toBe(STATE.list);
    expect(Object.keys(asl.States[STATE.map]!.ItemProcessor.States).sort()).toEqual(
      [STATE.backup, STATE.backupOrRestore, STATE.batchFailed, STATE.restore].sort(),
    );
  });

  it('runs a DISTRIBUTED Map over the batch list with concurrency and tolerance from props', () => {
    const map = asl.States[STATE.map]!;
    expect(map.Type).toBe('Map');
    expect(map.ItemProcessor.ProcessorConfig.Mode).toBe('DISTRIBUTED');
    expect(map.ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { 'Bucket.$': '$.listing.bucket', 'Key.$': '$.listing.batchesKey' },
    });
    expect(map.MaxConcurrency).toBe(7);
    expect(map.ToleratedFailurePercentage).toBe(12);
    expect(map.ItemSelector).toMatchObject({ 'runId.$': '$.runId', 'batchKey.$': '$$.Map.Item.Value.batchKey' });
    expect(map.Catch[0]).toMatchObject({ ErrorEquals: ['States.ALL'], Next: STATE.summarize });
    expect(map.Next).toBe(STATE.summarize);
    expect(asl.States[STATE.anythingToCopy]!.Choices[0]).toMatchObject({
      Variable: '$.listing.itemCount',
      NumericEquals: 0,
      Next: STATE.summarize,
    });
  });

  it('runs each batch as a .sync Fargate task with BATCH_KEY as the only override, retried and caught', () => {
    const states = asl.States[STATE.map]!.ItemProcessor.States;
    for (const [name, container] of [
      [STATE.backup, 'backup-worker'],
      [STATE.restore, 'restore-worker'],
    ] as const) {
      const s = states[name];
      expect(s.Resource).toBe('arn:aws:states:::ecs:runTask.sync');
      expect(s.Parameters.LaunchType).toBe('FARGATE');
      expect(s.Parameters.Overrides.ContainerOverrides).toEqual([
        { Name: container, Environment: [{ Name: 'BATCH_KEY', 'Value.$': '$.batchKey' }] },
      ]);
      expect(s.Retry[0].ErrorEquals).toContain('ECS.AmazonECSException');
      expect(s.Retry[0].JitterStrategy).toBe('FULL');
      expect(s.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: STATE.batchFailed }]);
    }
    expect(states[STATE.batchFailed].Type).toBe('Pass');
  });

  it('logs every state (without execution data) and traces with X-Ray; an alarm on failed executions notifies SNS', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false, Destinations: Match.anyValue() },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ExecutionsFailed',
      Namespace: 'AWS/States',
      AlarmActions: [Match.anyValue()],
    });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('is accepted by asl-validator once resolved', () => {
    const result = aslValidator(concreteAsl(json));
    expect(result.errorsText()).toBe('');
    expect(result.isValid).toBe(true);
  });
});

describe('worker task', () => {
  it('runs the Dockerfile CMD with the store URL; a local run gets the same command and environment', () => {
    const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'))![1]!;
    const tasks = workerTasks(json);
    expect(tasks.map((t) => t.mode).sort()).toEqual(['backup', 'restore']);
    for (const t of tasks) {
      expect(t.command).toEqual(JSON.parse(cmd));
      expect(t.environment.STORE_URL).toMatch(/^s3:\/\/[a-z0-9.-]+\/backups\/ecr\/$/);
      expect(t.environment.IMAGE_FORMAT).toBe('docker-archive');
      expect(t.environment.AWS_REGION).toBeTruthy();
    }
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '2048', Memory: '8192', RequiresCompatibilities: ['FARGATE'] });

    // What a local Step Functions runner passes for "Back up batch", with the path evaluated.
    const params = structuredClone(asl.States[STATE.map]!.ItemProcessor.States[STATE.backup].Parameters);
    params.Overrides.ContainerOverrides[0].Environment = [{ Name: 'BATCH_KEY', Value: 'backups/ecr/runs/r1/batches/000000.json' }];
    const launch = workerLaunchForRunTask(json, params, { env: { STORE_URL: 's3://local/backups/ecr/' } });
    expect(launch.mode).toBe('backup');
    expect(launch.env).toMatchObject({
      BATCH_KEY: 'backups/ecr/runs/r1/batches/000000.json',
      STORE_URL: 's3://local/backups/ecr/',
      IMAGE_FORMAT: 'docker-archive',
    });
    expect(launch.localCommand.slice(1)).toEqual(['--import', 'tsx', path.join(REPO_ROOT, 'worker/main.ts')]);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged errors', () => {
    const report = new AwsSolutionsChecks(app).validateScope(app);
    const errors = report.violations.filter((v) => v.severity === 'error');
    expect(errors.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });

  it('lets the app synthesize with the AwsSolutions plugin attached (as `cdk synth` does)', () => {
    expect(() => app.synth({ force: true })).not.toThrow();
  });
});

describe('optional prune step (prune prop)', () => {
  let pruneApp: App;
  let pruneStack: EcrBackupStack;
  let pruneJson: CfnTemplate;
  let pruneAsl: { States: Record<string, Record<string, any>> };
  beforeAll(() => {
    const synth = synthesizeTemplate({ context: { ecrBackup: { ...config, prune: { keepLast: 3, keepDays: 30 } } } });
    pruneApp = synth.app;
    pruneStack = synth.stack;
    pruneJson = synth.template;
    pruneAsl = concreteAsl(pruneJson) as typeof pruneAsl;
  });

  it('adds a prune state after "Summarize run", for backup runs only', () => {
    const states = pruneAsl.States;
    expect(Object.keys(states).sort()).toEqual(
      [
        STATE.anythingToCopy,
        STATE.map,
        STATE.list,
        STATE.shardedListing,
        STATE.listShards,
        STATE.mergeShards,
        STATE.summarize,
        STATE.notifyListingFailed,
        STATE.listingFailed,
        STATE.pruneAfterBackup,
        STATE.prune,
        STATE.done,
      ].sort(),
    );
    expect(states[STATE.summarize]).toMatchObject({ ResultPath: '$.summary', Next: STATE.pruneAfterBackup });
    expect(states[STATE.pruneAfterBackup]!.Choices).toEqual([{ Variable: '$.mode', StringEquals: 'backup', Next: STATE.prune }]);
    expect(states[STATE.pruneAfterBackup]!.Default).toBe(STATE.done);
    expect(states[STATE.done]).toMatchObject({ Type: 'Pass', OutputPath: '$.summary.Payload', End: true });
    expect(states[STATE.prune]).toMatchObject({ Type: 'Task', End: true, OutputPath: '$.Payload' });
    expect(states[STATE.prune]!.Parameters.Payload).toEqual({
      'runId.$': '$.runId',
      'summary.$': '$.summary.Payload',
      'input.$': '$$.Execution.Input',
    });
    const result = aslValidator(pruneAsl);
    expect(result.errorsText()).toBe('');
  });

  it('configures the prune Lambda with the rule and a grace period of the task timeout', () => {
    const template = Template.fromJSON(pruneJson as unknown as Record<string, unknown>);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Timeout: 900,
      Environment: {
        Variables: { PRUNE_KEEP_LAST: '3', PRUNE_KEEP_DAYS: '30', PRUNE_GRACE_SECONDS: String(6 * 3600), STORE_URL: Match.anyValue() },
      },
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'backups/ecr/blobs/', NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
          Match.objectLike({ Prefix: 'backups/ecr/catalog/', NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
        ]),
      },
    });
  });

  it('gives only the prune role s3:DeleteObject on blobs/ and catalog/ (the listing role: deleted-repository markers only), and no version deletes', () => {
    const logicalId = pruneStack.resolve((pruneStack.backup.pruneFunction!.role!.node.defaultChild as CfnRole).logicalId) as string;
    const statements: Statement[] = [];
    const deleters = new Set<string>();
    for (const r of Object.values(pruneJson.Resources)) {
      if (r.Type !== 'AWS::IAM::Policy') continue;
      const doc = r.Properties!.PolicyDocument as { Statement: Statement[] };
      if (JSON.stringify(r.Properties?.Roles ?? []).includes(`"${logicalId}"`)) statements.push(...doc.Statement);
      for (const s of doc.Statement) {
        const actions = actionsOf(s);
        expect(actions).not.toContain('s3:DeleteObjectVersion');
        if (actions.includes('s3:DeleteObject') && !JSON.stringify(s.Resource).endsWith('catalog/_deleted/*"]]}'))
          for (const role of r.Properties!.Roles as Array<{ Ref: string }>) deleters.add(role.Ref);
      }
    }
    expect([...deleters]).toEqual([logicalId]);
    const del = statements.find((s) => actionsOf(s).includes('s3:DeleteObject'))!;
    expect(actionsOf(del)).toEqual(['s3:DeleteObject']);
    const resources = JSON.stringify(pruneStack.resolve(del.Resource));
    expect(resources).toContain('/backups/ecr/blobs/*');
    expect(resources).toContain('/backups/ecr/catalog/*');
    expect(resources).not.toContain('runs/');
    const writes = statements.filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(JSON.stringify(writes.map((s) => s.Resource))).toContain('/backups/ecr/runs/*/prune.json');
    expect(JSON.stringify(writes.map((s) => s.Resource))).not.toMatch(/blobs|catalog/);
    const actions = new Set(statements.flatMap(actionsOf));
    for (const a of [
      's3:GetObjectRetention',
      's3:GetObjectLegalHold',
      's3:GetBucketObjectLockConfiguration',
      's3:ListBucket',
      's3:GetObject',
    ])
      expect(actions).toContain(a);
    for (const a of actions) expect(a.startsWith('ecr:')).toBe(false);
  });

  it('passes cdk-nag AwsSolutions', () => {
    const report = new AwsSolutionsChecks(pruneApp).validateScope(pruneApp);
    const errors = report.violations.filter((v) => v.severity === 'error');
    expect(errors.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });
});
