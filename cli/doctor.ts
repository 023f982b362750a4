// `ecr-backup doctor --stack NAME [--canary]`: checks a deployed stack from the operator's machine,
// with the operator's credentials, and prints a checklist with a fix for every failure. Read-only,
// except `--canary`, which runs a backup and a restore of a scratch repository through the real
// workflow. Exit 0 when every check passes (or does not apply), 1 when any fails, 2 on usage errors.
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { IAMClient } from '@aws-sdk/client-iam';
import { STSClient } from '@aws-sdk/client-sts';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SFNClient } from '@aws-sdk/client-sfn';
import { ECRClient } from '@aws-sdk/client-ecr';
import {
  checkEndpoints,
  checkHeadMissing,
  checkPermissions,
  checkSchedule,
  checkTopicPolicy,
  readStack,
  type Check,
  type DoctorClients,
} from './doctor-checks.ts';
import { runCanary, type CanaryClients } from './doctor-canary.ts';

export interface DoctorOptions {
  stack?: string;
  canary?: boolean;
  canaryRepository: string;
  repository: string;
  json?: boolean;
  /** Canary: how often executions are polled. */
  pollInterval: number;
}

export interface DoctorResult {
  stack: string;
  ok: boolean;
  checks: Check[];
}

/** Clients from the standard SDK configuration chain (profile, env, AWS_ENDPOINT_URL for emulators). */
export function defaultClients(): DoctorClients & CanaryClients {
  const pathStyle = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  return {
    cloudformation: new CloudFormationClient({}),
    iam: new IAMClient({}),
    sts: new STSClient({}),
    sns: new SNSClient({}),
    ec2: new EC2Client({}),
    scheduler: new SchedulerClient({}),
    sfn: new SFNClient({}),
    ecr: new ECRClient({}),
    s3With: (credentials, region) => new S3Client({ region, credentials, forcePathStyle: pathStyle }),
  };
}

/** Runs every check (the canary only with --canary); a check that throws is reported as FAIL. */
export async function runDoctor(options: DoctorOptions, clients: DoctorClients & CanaryClients): Promise<DoctorResult> {
  const stackName = options.stack!;
  const { check, facts } = await readStack(clients, stackName);
  const checks: Check[] = [check];
  if (facts) {
    const guarded = async (name: string, run: () => Promise<Check | Check[]>) => {
      try {
        checks.push(...[await run()].flat());
      } catch (error) {
        const e = error as Error;
        checks.push({
          name,
          status: 'FAIL',
          detail: `${e.name}: ${e.message}`,
          fix: "the call above failed: check that your credentials may read this stack's resources",
        });
      }
    };
    await guarded('permissions (IAM SimulatePrincipalPolicy)', () => checkPermissions(clients, facts, options.repository));
    await guarded('store: HEAD of a missing key answers 404', () => checkHeadMissing(clients, facts));
    await guarded('notifications: topic policy', () => checkTopicPolicy(clients, facts));
    await guarded('network: VPC endpoints', () => checkEndpoints(clients, facts));
    await guarded('schedule', () => checkSchedule(clients, facts));
    if (options.canary)
      await guarded('canary', () =>
        runCanary(clients, facts, { repository: options.canaryRepository, pollMs: options.pollInterval * 1000 }),
      );
  }
  return { stack: stackName, ok: checks.every((c) => c.status !== 'FAIL'), checks };
}

export function formatChecklist(result: DoctorResult): string {
  const lines = result.checks.flatMap((c) => [
    `${c.status.padEnd(4)}  ${c.name}: ${c.detail}`,
    ...(c.status === 'FAIL' && c.fix ? [`      fix: ${c.fix}`] : []),
  ]);
  const failed = result.checks.filter((c) => c.status === 'FAIL').length;
  lines.push(failed ? `${failed} check(s) failed for stack ${result.stack}` : `all checks passed for stack ${result.stack}`);
  return `${lines.join('\n')}\n`;
}
