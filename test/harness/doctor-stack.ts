// A stand-in ecr-backup stack in moto for `ecr-backup doctor` tests: CloudFormation stack (roles, VPC
// endpoints, outputs), SNS topic policy, Scheduler schedule and store bucket; moto lacks IAM's policy
// simulator, so IAM is scripted. useDoctorMoto() starts moto for the file.
import { afterAll, beforeAll, expect } from 'vitest';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { SimulatePrincipalPolicyCommand, type IAMClient } from '@aws-sdk/client-iam';
import { STSClient } from '@aws-sdk/client-sts';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SetTopicAttributesCommand, SNSClient } from '@aws-sdk/client-sns';
import { EC2Client } from '@aws-sdk/client-ec2';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { ECRClient } from '@aws-sdk/client-ecr';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { startMoto, type TestMoto } from './moto.ts';
import type { DoctorOptions, runDoctor } from '../../cli/doctor.ts';
import { CANARY_REPOSITORY, type CanaryClients } from '../../cli/doctor-canary.ts';
import type { DoctorClients } from '../../cli/doctor-checks.ts';

export const STACK = 'EcrBackupDoctor';
export const BUCKET = 'doctor-store';
export const PREFIX = 'backups/';
const ACCOUNT = '123456789012';
export const STATE_MACHINE = `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:EcrBackupStateMachine`;
export const FIX_REDEPLOY = /redeploy the stack/;

export let moto: TestMoto;
export let config: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
let topicArn: string;

/** Starts moto before the file's tests and stops it after; call at top level. */
export function useDoctorMoto(): void {
  beforeAll(async () => {
    moto = await startMoto();
    config = { endpoint: moto.url, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  });

  afterAll(async () => {
    await moto?.stop();
  });
}

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
export const denyInsecure = {
  Sid: 'AllowPublishThroughSSLOnly',
  Effect: 'Deny',
  Principal: '*',
  Action: 'sns:Publish',
  Resource: '*',
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
};

/** A healthy deployment in a fresh moto. */
export async function deploy(options: { omitOutput?: string; topicStatements?: object[] } = {}) {
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

export const schedule = (State: 'ENABLED' | 'DISABLED') => ({
  Name: 'EcrBackupSchedule1234',
  ScheduleExpression: 'cron(0 3 * * ? *)',
  FlexibleTimeWindow: { Mode: 'OFF' as const },
  Target: { Arn: STATE_MACHINE, RoleArn: `arn:aws:iam::${ACCOUNT}:role/scheduler`, Input: '{}' },
  State,
});

/** IAM's policy simulator, scripted: moto does not implement SimulatePrincipalPolicy. */
export function scriptedIam(denied: Array<{ role: RegExp; action: string }> = []): IAMClient {
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

export function clients(overrides: Partial<DoctorClients & CanaryClients> = {}): DoctorClients & CanaryClients {
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

export const options = (extra: Partial<DoctorOptions> = {}): DoctorOptions => ({
  stack: STACK,
  repository: 'team/app',
  canaryRepository: CANARY_REPOSITORY,
  pollInterval: 0.01,
  ...extra,
});
export const failed = (result: Awaited<ReturnType<typeof runDoctor>>) => result.checks.filter((c) => c.status === 'FAIL');
