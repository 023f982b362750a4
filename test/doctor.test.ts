// `ecr-backup doctor` against moto: a stand-in stack created through moto's CloudFormation (IAM roles,
// a VPC with its endpoints, the outputs the real stack has), an SNS topic with the real topic policy's
// CloudWatch statement, an EventBridge Scheduler schedule targeting the state machine, and the store
// bucket. moto answers DescribeStacks, ListStackResources, AssumeRole, HeadObject, GetTopicAttributes,
// DescribeVpcEndpoints, ListSchedules/GetSchedule and ECR DescribeImages; it does not implement IAM
// SimulatePrincipalPolicy (scripted below, said in each test name), and its Step Functions cannot run
// the real workflow (the canary uses a scripted Step Functions client).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { CloudFormationClient, CreateStackCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SimulatePrincipalPolicyCommand, type IAMClient } from '@aws-sdk/client-iam';
import { STSClient, type AssumeRoleCommand } from '@aws-sdk/client-sts';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SetTopicAttributesCommand, SNSClient } from '@aws-sdk/client-sns';
import { DeleteVpcEndpointsCommand, DescribeVpcEndpointsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateScheduleCommand, SchedulerClient, UpdateScheduleCommand } from '@aws-sdk/client-scheduler';
import { CreateRepositoryCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { type DescribeExecutionCommand, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { startMoto, type TestMoto } from './harness/moto.ts';
import { runCli } from './harness/cli.ts';
import { formatChecklist, runDoctor, type DoctorOptions } from '../cli/doctor.ts';
import { CANARY_REPOSITORY, CANARY_RESTORE_PREFIX } from '../cli/doctor-canary.ts';
import { LAMBDA_ROLES, PERMISSIONS, REQUIRED_OUTPUTS, type DoctorClients, type RoleName, type StackFacts } from '../cli/doctor-checks.ts';
import type { CfnRole, IRole } from 'aws-cdk-lib/aws-iam';
import { FAKE_ACCOUNT, FAKE_PARTITION, FAKE_REGION, resolveValue, synthesizeTemplate } from './harness/synthesized-workflow.ts';
import { TemplatePolicies } from './harness/iam.ts';
import type { CanaryClients } from '../cli/doctor-canary.ts';

const STACK = 'EcrBackupDoctor';
const BUCKET = 'doctor-store';
const PREFIX = 'backups/';
const ACCOUNT = '123456789012';
const STATE_MACHINE = `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:EcrBackupStateMachine`;
const FIX_REDEPLOY = /redeploy the stack/;

let moto: TestMoto;
let config: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
let topicArn: string;

beforeAll(async () => {
  moto = await startMoto();
  config = { endpoint: moto.url, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
});

afterAll(async () => {
  await moto?.stop();
});

const trust = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'ecs-tasks.amazonaws.com' }, Action: 'sts:AssumeRole' }],
};
const role = { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: trust } };

/** The real stack's shape, as far as the doctor reads it (logical ids as infra/ecr-backup.ts makes them). */
function template(options: { omitOutput?: string }) {
  const endpoint = (service: string, type: string) => ({
    Type: 'AWS::EC2::VPCEndpoint',
    Properties: {
      VpcId: { Ref: 'EcrBackupVpc' },
      ServiceName: `com.amazonaws.us-east-1.${service}`,
      VpcEndpointType: type,
      RouteTableIds: [],
      SubnetIds: [],
    },
  });
  const outputs: Record<string, { Value: unknown }> = {
    EcrBackupStateMachineArn: { Value: STATE_MACHINE },
    EcrBackupStoreUrl: { Value: `s3://${BUCKET}/${PREFIX}` },
    EcrBackupBackupTaskRoleArn: { Value: { 'Fn::GetAtt': ['EcrBackupBackupTaskRole1A2B3C4D', 'Arn'] } },
    EcrBackupRestoreTaskRoleArn: { Value: { 'Fn::GetAtt': ['EcrBackupRestoreTaskRole5E6F7A8B', 'Arn'] } },
    EcrBackupTopicArn: { Value: topicArn },
  };
  if (options.omitOutput) delete outputs[options.omitOutput];
  return {
    Resources: {
      EcrBackupBackupTaskRole1A2B3C4D: role,
      EcrBackupRestoreTaskRole5E6F7A8B: role,
      EcrBackupListImagesRoleC0FFEE12: role,
      EcrBackupSummarizeRunRoleBEEF3456: role,
      EcrBackupVpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.0.0.0/16' } },
      EcrBackupVpcS3: endpoint('s3', 'Gateway'),
      EcrBackupVpcEcrApi: endpoint('ecr.api', 'Interface'),
      EcrBackupVpcEcrDocker: endpoint('ecr.dkr', 'Interface'),
      EcrBackupVpcLogs: endpoint('logs', 'Interface'),
      EcrBackupVpcSts: endpoint('sts', 'Interface'),
    },
    Outputs: outputs,
  };
}

const cloudwatchStatement = {
  Sid: 'AllowCloudWatchAlarms',
  Effect: 'Allow',
  Principal: { Service: 'cloudwatch.amazonaws.com' },
  Action: 'sns:Publish',
  Resource: '*',
};
const denyInsecure = {
  Sid: 'AllowPublishThroughSSLOnly',
  Effect: 'Deny',
  Principal: '*',
  Action: 'sns:Publish',
  Resource: '*',
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
};

/** A healthy deployment in a fresh moto. */
async function deploy(options: { omitOutput?: string; topicStatements?: object[] } = {}) {
  await moto.reset();
  const sns = new SNSClient(config);
  topicArn = (await sns.send(new CreateTopicCommand({ Name: 'EcrBackupNotifications' }))).TopicArn!;
  const policy = { Version: '2012-10-17', Statement: options.topicStatements ?? [denyInsecure, cloudwatchStatement] };
  await sns.send(new SetTopicAttributesCommand({ TopicArn: topicArn, AttributeName: 'Policy', AttributeValue: JSON.stringify(policy) }));
  await new S3Client({ ...config, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: BUCKET }));
  await new CloudFormationClient({ ...config, maxAttempts: 1 }).send(
    new CreateStackCommand({ StackName: STACK, TemplateBody: JSON.stringify(template(options)) }),
  );
  await new SchedulerClient(config).send(new CreateScheduleCommand(schedule('ENABLED')));
}

const schedule = (State: 'ENABLED' | 'DISABLED') => ({
  Name: 'EcrBackupSchedule1234',
  ScheduleExpression: 'cron(0 3 * * ? *)',
  FlexibleTimeWindow: { Mode: 'OFF' as const },
  Target: { Arn: STATE_MACHINE, RoleArn: `arn:aws:iam::${ACCOUNT}:role/scheduler`, Input: '{}' },
  State,
});

/** IAM's policy simulator, scripted: moto does not implement SimulatePrincipalPolicy. */
function scriptedIam(denied: Array<{ role: RegExp; action: string }> = []): IAMClient {
  return {
    send: async (command: SimulatePrincipalPolicyCommand) => {
      expect(command).toBeInstanceOf(SimulatePrincipalPolicyCommand);
      const { PolicySourceArn, ActionNames } = command.input;
      const action = ActionNames![0]!;
      const deny = denied.some((d) => d.role.test(PolicySourceArn!) && d.action === action);
      return { EvaluationResults: [{ EvalActionName: action, EvalDecision: deny ? 'implicitDeny' : 'allowed' }] };
    },
  } as unknown as IAMClient;
}

function clients(overrides: Partial<DoctorClients & CanaryClients> = {}): DoctorClients & CanaryClients {
  return {
    cloudformation: new CloudFormationClient(config),
    iam: scriptedIam(),
    sts: new STSClient(config),
    sns: new SNSClient(config),
    ec2: new EC2Client(config),
    scheduler: new SchedulerClient(config),
    sfn: undefined as unknown as SFNClient,
    ecr: new ECRClient(config),
    s3With: (credentials, region) => new S3Client({ endpoint: moto.url, region, credentials, forcePathStyle: true }),
    ...overrides,
  };
}

const options = (extra: Partial<DoctorOptions> = {}): DoctorOptions => ({
  stack: STACK,
  repository: 'team/app',
  canaryRepository: CANARY_REPOSITORY,
  pollInterval: 0.01,
  ...extra,
});
const failed = (result: Awaited<ReturnType<typeof runDoctor>>) => result.checks.filter((c) => c.status === 'FAIL');

describe('doctor against moto', () => {
  beforeEach(() => deploy());

  it('passes every check of a healthy stack (scripted IAM client: moto does not implement SimulatePrincipalPolicy)', async () => {
    const result = await runDoctor(options(), clients());
    expect(failed(result)).toEqual([]);
    expect(result.ok).toBe(true);
    const byName = Object.fromEntries(result.checks.map((c) => [c.name, c]));
    expect(byName[`stack ${STACK}`]!.status).toBe('ok');
    for (const role of ['listing Lambda', 'backup task', 'restore task', 'summary Lambda'])
      expect(byName[`permissions: ${role} role`]!.status).toBe('ok');
    expect(byName['permissions: prune Lambda role']!.status).toBe('skip');
    // moto lets the operator assume the task role, so HeadObject was really sent and answered 404.
    expect(byName['store: HEAD of a missing key answers 404 for the backup task role']).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/role assumed/),
    });
    expect(byName['notifications: the topic policy lets CloudWatch alarms publish']!.status).toBe('ok');
    expect(byName['network: VPC endpoints for the isolated subnets']!.status).toBe('ok');
    expect(byName['schedule: enabled and starting the state machine']!.status).toBe('ok');
    expect(formatChecklist(result)).toMatch(/all checks passed/);
  });

  it('fails the stack check, with its fix, when an output is missing', async () => {
    await deploy({ omitOutput: 'EcrBackupTopicArn' });
    const result = await runDoctor(options(), clients());
    expect(result.ok).toBe(false);
    expect(result.checks).toEqual([
      expect.objectContaining({
        status: 'FAIL',
        detail: expect.stringMatching(/missing: TopicArn/),
        fix: expect.stringMatching(FIX_REDEPLOY),
      }),
    ]);
  });

  it('fails the stack check when the stack is left in a failed state (scripted CloudFormation status: moto creates stacks complete)', async () => {
    const real = new CloudFormationClient(config);
    const cloudformation = {
      send: async (command: DescribeStacksCommand) => {
        const output = await real.send(command as never);
        if (command instanceof DescribeStacksCommand)
          for (const stack of (output as { Stacks?: Array<{ StackStatus?: string }> }).Stacks ?? [])
            stack.StackStatus = 'UPDATE_ROLLBACK_FAILED';
        return output;
      },
    } as unknown as CloudFormationClient;
    const result = await runDoctor(options(), clients({ cloudformation }));
    expect(result.ok).toBe(false);
    expect(result.checks).toEqual([
      expect.objectContaining({
        status: 'FAIL',
        detail: 'the stack is UPDATE_ROLLBACK_FAILED',
        fix: expect.stringMatching(/CloudFormation console/),
      }),
    ]);
  });

  it('names each denied call and its role (scripted IAM client: moto does not implement SimulatePrincipalPolicy)', async () => {
    const result = await runDoctor(options(), clients({ iam: scriptedIam([{ role: /BackupTaskRole/, action: 's3:PutObject' }]) }));
    expect(result.ok).toBe(false);
    const [check] = failed(result);
    expect(check).toMatchObject({ name: 'permissions: backup task role', fix: expect.stringMatching(FIX_REDEPLOY) });
    expect(check!.detail).toContain(`s3:PutObject on arn:aws:s3:::${BUCKET}/${PREFIX}blobs/sha256/`);
    expect(failed(result)).toHaveLength(1);
    expect(formatChecklist(result)).toMatch(/^FAIL {2}permissions: backup task role: denied: .*\n {6}fix: .*redeploy/m);
  });

  it('falls back to simulating s3:ListBucket when the task role cannot be assumed, and fails when it is denied (scripted STS and IAM clients)', async () => {
    const sts = {
      send: async (_: AssumeRoleCommand) => {
        throw Object.assign(new Error('not authorized to perform sts:AssumeRole'), { name: 'AccessDenied' });
      },
    } as unknown as STSClient;
    const result = await runDoctor(options(), clients({ sts, iam: scriptedIam([{ role: /BackupTaskRole/, action: 's3:ListBucket' }]) }));
    const head = result.checks.find((c) => c.name.startsWith('store: HEAD'))!;
    expect(head).toMatchObject({
      status: 'FAIL',
      detail: expect.stringMatching(/simulated as implicitDeny: S3 would answer 403/),
      fix: expect.stringMatching(/StringLikeIfExists/),
    });
    expect(result.ok).toBe(false);
  });

  it('fails when the topic policy does not let CloudWatch publish (the enforceSSL default)', async () => {
    await deploy({ topicStatements: [denyInsecure] });
    const result = await runDoctor(options(), clients());
    expect(failed(result)).toEqual([
      expect.objectContaining({
        name: 'notifications: the topic policy lets CloudWatch alarms publish',
        fix: expect.stringMatching(FIX_REDEPLOY),
      }),
    ]);
  });

  it('fails when a VPC endpoint the isolated subnets need is gone', async () => {
    const ec2 = new EC2Client(config);
    const endpoints = (await ec2.send(new DescribeVpcEndpointsCommand({}))).VpcEndpoints ?? [];
    const sts = endpoints.find((e) => e.ServiceName === 'com.amazonaws.us-east-1.sts')!;
    await ec2.send(new DeleteVpcEndpointsCommand({ VpcEndpointIds: [sts.VpcEndpointId!] }));
    const result = await runDoctor(options(), clients());
    expect(failed(result)).toEqual([
      expect.objectContaining({
        name: 'network: VPC endpoints for the isolated subnets',
        detail: expect.stringMatching(/lacks: sts \(Interface\)/),
      }),
    ]);
  });

  it('fails when the schedule is disabled', async () => {
    await new SchedulerClient(config).send(new UpdateScheduleCommand(schedule('DISABLED')));
    const result = await runDoctor(options(), clients());
    expect(failed(result)).toEqual([
      expect.objectContaining({
        name: 'schedule: enabled and starting the state machine',
        detail: 'EcrBackupSchedule1234 is DISABLED',
        fix: expect.stringMatching(/--state ENABLED/),
      }),
    ]);
  });
});

describe('doctor --canary', () => {
  const manifest = (n: number) => {
    const text = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: 2 },
      layers: [],
    });
    return { text, digest: `sha256:${createHash('sha256').update(text).digest('hex')}` };
  };
  async function image(repositoryName: string, tag: string, n: number) {
    const ecr = new ECRClient(config);
    await ecr.send(new CreateRepositoryCommand({ repositoryName })).catch(() => undefined);
    const m = manifest(n);
    await ecr.send(
      new PutImageCommand({
        repositoryName,
        imageTag: tag,
        imageManifest: m.text,
        imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
        imageDigest: m.digest,
      }),
    );
  }
  /** Step Functions, scripted: moto cannot run the workflow's Lambda and ECS tasks. Records the inputs. */
  function scriptedSfn(status: string, started: unknown[]): SFNClient {
    return {
      send: async (command: StartExecutionCommand | DescribeExecutionCommand) => {
        if (command instanceof StartExecutionCommand) {
          expect(command.input.stateMachineArn).toBe(STATE_MACHINE);
          started.push(JSON.parse(command.input.input!));
          return { executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${command.input.name}` };
        }
        return { status, ...(status === 'FAILED' ? { error: 'States.TaskFailed' } : {}) };
      },
    } as unknown as SFNClient;
  }

  beforeEach(() => deploy());

  it('backs up and restores the scratch repository through the workflow and compares digests (scripted Step Functions client)', async () => {
    await image(CANARY_REPOSITORY, 'canary', 1);
    await image(`${CANARY_RESTORE_PREFIX}${CANARY_REPOSITORY}`, 'canary', 1);
    const started: unknown[] = [];
    const result = await runDoctor(options({ canary: true }), clients({ sfn: scriptedSfn('SUCCEEDED', started) }));
    expect(started).toEqual([
      { mode: 'backup', repositories: [CANARY_REPOSITORY] },
      { mode: 'restore', repositories: [CANARY_REPOSITORY], target: { repositoryPrefix: CANARY_RESTORE_PREFIX } },
    ]);
    expect(result.checks.at(-1)).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/1 tag\(s\) backed up and restored.*digests equal/),
    });
    expect(result.ok).toBe(true);
  });

  it('fails when the restored digest differs, when an execution fails, and when the scratch repository is missing (scripted Step Functions client)', async () => {
    const differs = async () => {
      await image(CANARY_REPOSITORY, 'canary', 1);
      await image(`${CANARY_RESTORE_PREFIX}${CANARY_REPOSITORY}`, 'canary', 2);
      return runDoctor(options({ canary: true }), clients({ sfn: scriptedSfn('SUCCEEDED', []) }));
    };
    expect((await differs()).checks.at(-1)).toMatchObject({
      status: 'FAIL',
      detail: expect.stringMatching(/restored digests differ: canary: sha256:/),
    });

    const started: unknown[] = [];
    const failedRun = await runDoctor(options({ canary: true }), clients({ sfn: scriptedSfn('FAILED', started) }));
    expect(failedRun.checks.at(-1)).toMatchObject({
      status: 'FAIL',
      detail: expect.stringMatching(/^backup execution FAILED: States.TaskFailed/),
    });
    expect(started).toHaveLength(1);

    const missing = await runDoctor(
      options({ canary: true, canaryRepository: 'no-such-repo' }),
      clients({ sfn: scriptedSfn('SUCCEEDED', []) }),
    );
    expect(missing.checks.at(-1)).toMatchObject({
      status: 'FAIL',
      detail: 'repository no-such-repo does not exist',
      fix: expect.stringMatching(/skopeo copy/),
    });
    expect(missing.ok).toBe(false);
  });
});

describe('doctor as a command', () => {
  it('exits 2 without --stack', async () => {
    const result = await runCli(['doctor'], { env: moto.env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/give --stack NAME/);
  });

  it('exits 1 with a fix when the stack does not exist, as a checklist and as JSON', async () => {
    await moto.reset();
    const text = await runCli(['doctor', '--stack', 'NoSuchStack'], { env: moto.env });
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toMatch(/^FAIL {2}stack NoSuchStack: no such stack.*\n {6}fix: check --stack/m);
    const json = await runCli(['doctor', '--stack', 'NoSuchStack', '--json'], { env: moto.env });
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      stack: 'NoSuchStack',
      ok: false,
      checks: [{ status: 'FAIL', name: 'stack NoSuchStack' }],
    });
  });
});

// The scripted simulator above allows everything; this proves the table it is asked about is what the
// real stack grants: every row, evaluated on the synthesized template by a real IAM policy evaluator,
// with the role and output names the doctor looks for.
describe("doctor's permission table against the synthesized template", () => {
  it('every (role, action, resource) row is allowed, and the doctor finds each role and output by name', async () => {
    const synth = synthesizeTemplate({
      context: {
        ecrBackup: { stackName: 'EcrBackupDoctorTable', repositories: ['team/**'], schedule: null, prefix: PREFIX, prune: { keepLast: 3 } },
      },
      nag: false,
    });
    const policies = new TemplatePolicies(synth.template);
    const outputs = (synth.template as unknown as { Outputs: Record<string, { Value: unknown }> }).Outputs;
    for (const suffix of REQUIRED_OUTPUTS)
      expect(
        Object.keys(outputs).some((k) => k.endsWith(suffix)),
        suffix,
      ).toBe(true);
    const logicalId = (role: IRole) => synth.stack.resolve((role.node.defaultChild as CfnRole).logicalId) as string;
    const roleIds: Record<RoleName, string> = {
      'backup task': logicalId(synth.stack.backup.backupTaskDefinition.taskRole),
      'restore task': logicalId(synth.stack.backup.restoreTaskRole),
      'listing Lambda': logicalId(synth.stack.backup.listFunction.role!),
      'summary Lambda': logicalId(synth.stack.backup.summarizeFunction.role!),
      'prune Lambda': logicalId(synth.stack.backup.pruneFunction!.role!),
    };
    const roleIdsInTemplate = Object.entries(synth.template.Resources)
      .filter(([, r]) => r.Type === 'AWS::IAM::Role')
      .map(([id]) => id);
    for (const [role, pattern] of LAMBDA_ROLES)
      expect(
        roleIdsInTemplate.filter((id) => pattern.test(id)),
        role,
      ).toEqual([roleIds[role]]);

    const facts: StackFacts = {
      stackName: 'EcrBackupDoctorTable',
      partition: FAKE_PARTITION,
      region: FAKE_REGION,
      account: FAKE_ACCOUNT,
      stateMachineArn: STATE_MACHINE,
      bucket: policies.storeBucketName(),
      prefix: PREFIX,
      topicArn: resolveValue(synth.template, Object.entries(outputs).find(([k]) => k.endsWith('TopicArn'))![1].Value) as string,
      roles: {},
      resources: [],
    };
    const denied: string[] = [];
    for (const row of PERMISSIONS) {
      const resource = row.resource(facts, 'team/app');
      const context = Object.fromEntries((row.context?.(facts) ?? []).map((c) => [c.ContextKeyName!, c.ContextKeyValues![0]!]));
      const decision = await policies.decide({ roleLogicalId: roleIds[row.role] }, { action: row.action, resource, context });
      if (decision !== 'Allowed') denied.push(`${row.role}: ${row.action} on ${resource}: ${decision}`);
    }
    expect(denied).toEqual([]);
    expect(new Set(PERMISSIONS.map((p) => p.role))).toEqual(new Set(Object.keys(roleIds)));
  }, 240_000);
});
