// `ecr-backup doctor`'s checks against a stand-in stack in moto: healthy, then each way a deployment
// breaks (missing output, failed stack, denied calls, topic policy, VPC endpoint, disabled schedule).
import { beforeEach, describe, expect, it } from 'vitest';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { STSClient, AssumeRoleCommand } from '@aws-sdk/client-sts';
import { DeleteVpcEndpointsCommand, DescribeVpcEndpointsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { SchedulerClient, UpdateScheduleCommand } from '@aws-sdk/client-scheduler';
import { formatChecklist, runDoctor } from '../cli/doctor.ts';
import {
  BUCKET,
  clients,
  config,
  deploy,
  denyInsecure,
  failed,
  FIX_REDEPLOY,
  options,
  PREFIX,
  schedule,
  scriptedIam,
  STACK,
  useDoctorMoto,
} from './harness/doctor-stack.ts';

useDoctorMoto();
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
