// Defects a first real deploy would hit (issue 9), each checked on the synthesized template; IAM
// questions are answered by a real policy evaluator (test/harness/iam.ts), not by string matching.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { CfnRole } from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Asl } from './harness/asl.ts';
import { grantCrossAccountRestore } from '../infra/cross-account.ts';
import {
  cdkJsonContext,
  concreteAsl,
  FAKE_ACCOUNT,
  FAKE_REGION,
  resolveValue,
  synthesizeTemplate,
  type CfnTemplate,
} from './harness/synthesized-workflow.ts';
import type { EcrBackupContext } from '../infra/context.ts';
import { createApp, type EcrBackupStack } from '../infra/stack.ts';
import { LISTING_INFRASTRUCTURE_ERRORS } from '../state-machine/definition.ts';
import { STATE } from '../schema/workflow-states.ts';
import { TemplatePolicies } from './harness/iam.ts';

const TARGET_ROLE = 'arn:aws:iam::210987654321:role/ecr-backup-restore-target';
const config: EcrBackupContext = {
  stackName: 'EcrBackupDeployTest',
  repositories: ['team/**'],
  schedule: null,
  prefix: 'backups/',
  failureTolerancePercent: 10,
  restoreTargetRoles: [TARGET_ROLE],
};

let outdir: string;
let stack: EcrBackupStack;
let json: CfnTemplate;
let policies: TemplatePolicies;
let asl: Asl;
let bucketArn: string;

const idOf = (construct: { node: { defaultChild?: unknown } }) =>
  stack.resolve((construct.node.defaultChild as CfnRole).logicalId) as string;
const role = (r: iam.IRole) => ({ roleLogicalId: idOf(r) });

beforeAll(() => {
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecr-backup-deploy-'));
  const synth = synthesizeTemplate({ context: { ecrBackup: config }, nag: false, outdir });
  stack = synth.stack;
  json = synth.template;
  policies = new TemplatePolicies(json);
  asl = concreteAsl(json) as unknown as Asl;
  bucketArn = `arn:aws:s3:::${policies.storeBucketName()}`;
});

afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

describe('defect 1: alarm e-mails', () => {
  it("lets this account's CloudWatch alarms publish to the topic, and still denies plain HTTP (topic policy, evaluated)", async () => {
    const topicArn = String(resolveValue(json, { Ref: idOf(stack.backup.topic as never) }));
    const alarm = `arn:aws:cloudwatch:${FAKE_REGION}:${FAKE_ACCOUNT}:alarm:EcrBackup-ExecutionsFailed`;
    const cloudwatch = { service: 'cloudwatch.amazonaws.com' };
    const publish = (context: Record<string, string>) =>
      policies.decide(cloudwatch, { action: 'sns:Publish', resource: topicArn, context });
    expect(await publish({ 'aws:SourceAccount': FAKE_ACCOUNT, 'aws:SourceArn': alarm })).toBe('Allowed');
    expect(await publish({ 'aws:SourceAccount': '999999999999', 'aws:SourceArn': alarm.replace(FAKE_ACCOUNT, '999999999999') })).not.toBe(
      'Allowed',
    );
    expect(await publish({ 'aws:SourceAccount': FAKE_ACCOUNT, 'aws:SourceArn': alarm, 'aws:SecureTransport': 'false' })).toBe(
      'ExplicitlyDenied',
    );
  });
});

describe('defect 2: cross-account restore', () => {
  it('lets the restore task role assume exactly the listed target roles, and nothing else assume them', async () => {
    expect(await policies.decide(role(stack.backup.restoreTaskRole), { action: 'sts:AssumeRole', resource: TARGET_ROLE })).toBe('Allowed');
    expect(
      await policies.decide(role(stack.backup.restoreTaskRole), {
        action: 'sts:AssumeRole',
        resource: 'arn:aws:iam::210987654321:role/admin',
      }),
    ).toBe('ImplicitlyDenied');
    expect(
      await policies.decide(role(stack.backup.backupTaskDefinition.taskRole), { action: 'sts:AssumeRole', resource: TARGET_ROLE }),
    ).toBe('ImplicitlyDenied');
  });

  it('refuses a restoreTargetRoles entry that is not a role ARN, naming it', () => {
    const s = new Stack(new App(), 'S', { env: { account: FAKE_ACCOUNT, region: FAKE_REGION } });
    const r = new iam.Role(s, 'R', { assumedBy: new iam.AccountRootPrincipal() });
    expect(() => grantCrossAccountRestore(r, ['210987654321'])).toThrow(/restoreTargetRoles: "210987654321" is not an IAM role ARN/);
  });
});

describe('defect 3: the distributed Map output', () => {
  it("writes the children's outputs to runs/map-results/ with a ResultWriter the state machine role may write", async () => {
    const map = asl.States[STATE.map]!;
    expect(map.ResultWriter).toEqual({
      Resource: 'arn:aws:states:::s3:putObject',
      Parameters: { 'Bucket.$': '$.listing.bucket', Prefix: 'backups/runs/map-results' },
      WriterConfig: { OutputType: 'JSON', Transformation: 'COMPACT' },
    });
    expect(map.ResultPath).toBeNull();
    const sm = role(stack.backup.stateMachine.role);
    expect(
      await policies.decide(sm, { action: 's3:PutObject', resource: `${bucketArn}/backups/runs/map-results/abc/SUCCEEDED_0.json` }),
    ).toBe('Allowed');
    expect(await policies.decide(sm, { action: 's3:PutObject', resource: `${bucketArn}/backups/blobs/sha256/x` })).toBe('ImplicitlyDenied');
  });
});

describe('defect 4: HEAD of a missing key answers 404', () => {
  it('grants every store role s3:ListBucket without s3:prefix (what S3 checks for a missing key), listings stay in the store areas', async () => {
    const roles = [
      stack.backup.listFunction.role!,
      stack.backup.summarizeFunction.role!,
      stack.backup.backupTaskDefinition.taskRole,
      stack.backup.restoreTaskRole,
    ];
    for (const r of roles) {
      expect(await policies.decide(role(r), { action: 's3:ListBucket', resource: bucketArn }), r.node.path).toBe('Allowed');
      expect(
        await policies.decide(role(r), { action: 's3:ListBucket', resource: bucketArn, context: { 's3:prefix': 'backups/runs/' } }),
        r.node.path,
      ).toBe('Allowed');
      expect(
        await policies.decide(role(r), { action: 's3:ListBucket', resource: bucketArn, context: { 's3:prefix': 'someone-else/' } }),
        r.node.path,
      ).toBe('ImplicitlyDenied');
    }
  });
});

describe('defect 5: the Lambdas carry their own AWS SDK', () => {
  it('bundles @aws-sdk/* into every Lambda (no import left for the runtime to satisfy)', () => {
    // The staged Lambda assets of this synth (the list and summary handlers).
    const bundles = fs.readdirSync(outdir).filter((d) => d.startsWith('asset.') && fs.existsSync(path.join(outdir, d, 'index.mjs')));
    expect(bundles).toHaveLength(2);
    for (const dir of bundles) {
      const code = fs.readFileSync(path.join(outdir, dir, 'index.mjs'), 'utf8');
      // What an external looks like in an esbuild ESM bundle: a top-level import or a __require call.
      expect(code).not.toMatch(/^\s*import\b[^;\n]*["']@(aws-sdk|smithy)\//m);
      expect(code).not.toMatch(/__require\(["']@(aws-sdk|smithy)\//);
      expect(code).toMatch(/var (S3Client|SNSClient|ECRClient) = class/);
    }
  });
});

describe('defect 6: retries, log groups, configuration, listing failures', () => {
  it('retries RunTask failures that surface as AmazonECS.Unknown', () => {
    for (const name of [STATE.backup, STATE.restore])
      expect(asl.States[STATE.map]!.ItemProcessor.States[name]!.Retry[0]!.ErrorEquals).toContain('AmazonECS.Unknown');
  });

  it('names the state machine log group under /aws/vendedlogs/', () => {
    const sm = Object.values(json.Resources).find((r) => r.Type === 'AWS::StepFunctions::StateMachine')!;
    const destination = JSON.stringify(sm.Properties!.LoggingConfiguration);
    const groupId = /"Fn::GetAtt":\["([^"]+)","Arn"\]/.exec(destination)![1]!;
    expect(json.Resources[groupId]!.Properties!.LogGroupName).toBe('/aws/vendedlogs/states/EcrBackupDeployTest-EcrBackup');
  });

  it("gives the VPC custom resource's Lambda a log group with retention, created before the custom resource runs", () => {
    const handlerId = Object.keys(json.Resources).find(
      (id) => id.startsWith('CustomVpcRestrictDefaultSGCustomResourceProvider') && json.Resources[id]!.Type === 'AWS::Lambda::Function',
    )!;
    const [groupId, group] = Object.entries(json.Resources).find(
      ([, r]) => r.Type === 'AWS::Logs::LogGroup' && JSON.stringify(r.Properties?.LogGroupName ?? '').includes(handlerId),
    )!;
    expect(group.Properties!.LogGroupName).toEqual({ 'Fn::Join': ['', ['/aws/lambda/', { Ref: handlerId }]] });
    expect(group.Properties!.RetentionInDays).toBe(30);
    const custom = Object.values(json.Resources).find((r) => r.Type === 'Custom::VpcRestrictDefaultSG') as { DependsOn?: string[] };
    expect(custom.DependsOn).toContain(groupId);
  });

  it("merges -c ecrBackup='{...}' over cdk.json's object instead of replacing it", () => {
    const context = {
      ...cdkJsonContext(),
      ecrBackup: JSON.stringify({ stackName: 'EcrBackupMerged', notificationEmail: 'ops@example.com' }),
    };
    const { stack: merged } = createApp({ context, nag: false });
    expect(merged.stackName).toBe('EcrBackupMerged');
    expect(merged.backup.prefix).toBe('ecr-backup/'); // cdk.json's
    const mergedAsl = concreteAsl(Template.fromStack(merged).toJSON() as CfnTemplate) as unknown as Asl;
    expect(mergedAsl.States[STATE.map]!.ToleratedFailurePercentage).toBe(5); // cdk.json's
    expect(() => createApp({ context: { ecrBackup: '{repositories:' }, nag: false })).toThrow(/-c ecrBackup: not JSON/);
  });

  it('notifies and fails the execution when listing fails for a reason other than the input (a timeout, a crash)', () => {
    const list = asl.States[STATE.list]!;
    expect(list.Catch).toEqual([
      { ErrorEquals: LISTING_INFRASTRUCTURE_ERRORS, ResultPath: '$.listFailed', Next: STATE.notifyListingFailed },
    ]);
    for (const e of ['Sandbox.Timedout', 'States.Timeout', 'Runtime.ImportModuleError']) expect(LISTING_INFRASTRUCTURE_ERRORS).toContain(e);
    expect(LISTING_INFRASTRUCTURE_ERRORS).not.toContain('States.ALL'); // an invalid input is not caught
    expect(asl.States[STATE.notifyListingFailed]).toMatchObject({ Resource: 'arn:aws:states:::sns:publish', Next: STATE.listingFailed });
    expect(asl.States[STATE.listingFailed]).toEqual({ Type: 'Fail', ErrorPath: '$.listFailed.Error', CausePath: '$.listFailed.Cause' });
  });
});
