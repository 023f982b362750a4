// The CDK stack's resources, synthesized once in-process with the test configuration: the store
// bucket, Lambdas, schedule, state machine, worker task, and cdk-nag AwsSolutions.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { App } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../infra/assets.ts';
import { concreteAsl, workerLaunchForRunTask, workerTasks, type CfnTemplate } from './harness/synthesized-workflow.ts';
import type { EcrBackupStack } from '../infra/stack.ts';
import { STATE } from '../schema/workflow-states.ts';
import { STACK_NAME_TAG } from '../schema/contract.ts';
import { aslValidator, config, synthesizeTestStack, WORKFLOW_STATES, type TestStack } from './harness/infra-stack.ts';

let app: App;
let stack: EcrBackupStack;
let template: Template;
let json: CfnTemplate;
let asl: TestStack['asl'];

beforeAll(() => {
  ({ app, stack, template, json, asl } = synthesizeTestStack());
});

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
    expect(Object.keys(asl.States).sort()).toEqual([...WORKFLOW_STATES].sort());
    expect(asl.StartAt).toBe(STATE.list);
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
      const s = states[name]!;
      expect(s.Resource).toBe('arn:aws:states:::ecs:runTask.sync');
      expect(s.Parameters.LaunchType).toBe('FARGATE');
      expect(s.Parameters.Overrides.ContainerOverrides).toEqual([
        { Name: container, Environment: [{ Name: 'BATCH_KEY', 'Value.$': '$.batchKey' }] },
      ]);
      expect(s.Retry[0]!.ErrorEquals).toContain('ECS.AmazonECSException');
      expect(s.Retry[0]!.JitterStrategy).toBe('FULL');
      expect(s.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: STATE.batchFailed }]);
    }
    expect(states[STATE.batchFailed]!.Type).toBe('Pass');
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
    const params = structuredClone(asl.States[STATE.map]!.ItemProcessor.States[STATE.backup]!.Parameters);
    params.Overrides.ContainerOverrides[0]!.Environment = [{ Name: 'BATCH_KEY', Value: 'backups/ecr/runs/r1/batches/000000.json' }];
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
